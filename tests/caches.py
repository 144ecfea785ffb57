"""The process caches a test may leave warm (one list, for every suite that resets them)."""


def clear_process_caches() -> None:
    from kms.api.auth import clear_key_cache, throttle_histories
    from kms.experiments.impressions import buffer
    from kms.experiments.serving import version_indexes
    from kms.experiments.services import running
    from kms.recs.services import index_cache, popularity, product_rows
    from kms.recs.serving_cache import serving_cache
    from kms.search import search_index

    for clear in (clear_key_cache, throttle_histories.clear, popularity.clear, search_index.clear, index_cache.clear,
                  product_rows.clear, serving_cache.clear, running.clear, version_indexes.clear, buffer.clear):
        clear()
