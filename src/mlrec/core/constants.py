"""Column names, vocabularies and fixed protocol numbers shared by every step.

Vocabularies follow MovieLens-1M's spellings and codes; other datasets are converted to them
(see ``mlrec.data``) so that every later step sees one format. Code 0 of every vocabulary is the
"unknown" bucket, so an unseen value never breaks a lookup.
"""

# raw columns (canonical MovieLens-1M layout)
USERID = "userid"
ITEMID = "itemid"
RATING = "rating"
TS = "ts"
GENDER = "gender"
AGE = "age"
OCCUPATION = "occupation"
ZIPCODE = "zipcode"
TITLE = "title"
GENRES = "genres"

# derived columns
LABEL = "label"  # implicit feedback: 1 if rating > CLICK_RATING_THRESHOLD
ISTEST = "istest"  # 0 = offline train, 1 = offline test (online rows live in their own file)
# an event's 0-based place in its user's time order (ties in ts keep file order): the order as data, so an
# engine that shuffles rows (Spark, DuckDB) can rebuild every per-user window from the split's artifacts
POS = "pos"

# the split protocol (issue #2): last 10 events per user -> online evaluation,
# the rest -> first 80 % train, last 20 % test, all ordered by time.
CLICK_RATING_THRESHOLD = 3
ONLINE_LAST_N = 10
OFFLINE_TEST_RATIO = 0.2
PIT_WINDOW = 10  # events per user behind each point-in-time genre count
TERM_MIN_CLICKS = 3  # a genre becomes a user term with >= this many clicks in the window

EMPTY_KEY = "empty_key"
# MovieLens-1M genres; index 0 is the unknown genre (ML-100K's "unknown", or anything new).
GENRE_NAMES = [
    EMPTY_KEY,
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
GENRES_MAPPING = {name: code for code, name in enumerate(GENRE_NAMES)}
N_GENRES = len(GENRE_NAMES)

GENDER_MAPPING: dict[str, int] = {EMPTY_KEY: 0, "M": 1, "F": 2}
# ML-1M age buckets: 1 "Under 18", 18 "18-24", 25, 35, 45, 50, 56 "56+"
AGE_BUCKETS = [1, 18, 25, 35, 45, 50, 56]
AGE_MAPPING: dict[str | int, int] = {EMPTY_KEY: 0, **{age: code for code, age in enumerate(AGE_BUCKETS, start=1)}}
# ML-1M occupations are coded 0..20; shifted by one so 0 stays "unknown".
N_OCCUPATIONS = 21
OCCUPATION_MAPPING: dict[str | int, int] = {EMPTY_KEY: 0, **{occ: occ + 1 for occ in range(N_OCCUPATIONS)}}

# recall / serving protocol
EMB_DIM = 16  # MF user and item vectors
RECALL_SIZE = 200  # candidates from Elasticsearch
RESPONSE_SIZE = 50  # items returned by POST /ml/rec
SEED = 123
