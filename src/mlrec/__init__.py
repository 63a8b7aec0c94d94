"""mlrec: an end-to-end MovieLens recommender, offline (pandas + PyTorch) to online
(Redis, Elasticsearch, Feast, Triton, Flask). Scripts under offline/, offline_to_online/ and
online/ are thin entry points into this package."""

__version__ = "0.1.0"
