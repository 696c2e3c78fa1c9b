"""Model families and the shared Recommender contract."""
