"""Print a recommendations response (stdin) briefly; exit 1 unless it has the expected number of items."""
import json
import sys

want = int(sys.argv[1]) if len(sys.argv) > 1 else 20
body = json.load(sys.stdin)
for item in body["items"][:5]:
    print(f"  {item['score']:8.4f}  {item['product']:>6}  {item['title'][:70]}")
n = len(body["items"])
print(f"  ... {n} items, source={body['source']}, model version {body['model_version']}")
sys.exit(0 if n == want else 1)
