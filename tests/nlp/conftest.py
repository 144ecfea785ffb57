import pytest

from nlp import KnowledgeBase, ProductText, build_pipeline
from nlp.catalogue import SCIENTIFIC_ITEMS, load_amazon_items

# Real catalogue records (Amazon-Scientific items "1" and "3"), quoted as test fixtures.
STAPLES = ProductText(
    uid="1",
    title="Stanley TRA708T Sharpshooter 1/2-Inch Leg Length Staples, Steel (1000 Count).",
    description=(
        "Heavy-duty staples are ideal for jobs such as insulation, carpet underlaying and "
        "roofing felt. Staple Type: Staple Gun; For Use With: Stanley Bostitch SharpShooter "
        "Tacker (TR150); Leg Length: 1/2 in; Sheet Capacity: N/A. Heavy Duty  Narrow Crown  "
        "fits TR100, TR200, TRE500 series, PHT150, PHT250 and Arrow T-50."),
    brand="Stanley",
    categories=["Industrial & Scientific", "Fasteners", "Collated Fasteners", "Staples"],
)
SCREWS = ProductText(
    uid="3",
    title="Kreg SML-C125-500 1-1/4-Inch #8 Coarse Pocket Hole Screws with Washer-Head, 500-Pack.",
    description="The self-tapping type 17 auger tip eliminates the need to predrill.",
    brand="Kreg",
    categories=["Industrial & Scientific", "Fasteners", "Screws", "Wood Screws"],
)
HARD_START = ProductText(
    uid="0",
    title="SUPCO SPP6 Relay/Capacitor Hard Start Kit with 500% Increase Starting Torque.",
    description=("Designed for use on permanent split CAPACITOR single phase a/c and heat "
                 "pump systems."),
    brand="Sealed Unit Parts Co., Inc.",
    categories=["Industrial & Scientific", "Industrial Electrical", "Passive Components",
                "Capacitors"],
)


@pytest.fixture(scope="session")
def staples():
    return STAPLES


@pytest.fixture(scope="session")
def screws():
    return SCREWS


@pytest.fixture(scope="session")
def hard_start():
    return HARD_START


@pytest.fixture(scope="session")
def kb():
    return KnowledgeBase.from_products([STAPLES, SCREWS, HARD_START,
                                        ProductText("x", "t", brand="Arrow Fastener Co.")])


@pytest.fixture(scope="session")
def pipe(kb):
    return build_pipeline(kb)


@pytest.fixture(scope="session")
def catalogue():
    if not SCIENTIFIC_ITEMS.exists():
        pytest.skip("Amazon-Scientific dump not available")
    return load_amazon_items()
