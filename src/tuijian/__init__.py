"""tuijian: personalized recommendation from raw logs to served top-K."""
