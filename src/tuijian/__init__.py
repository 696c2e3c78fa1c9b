"""tuijian: personalized recommendation from raw logs to served top-K."""

# Registers the default trainer of torch models (models never import training; see
# docs/architecture.md). Any `import tuijian.<module>` runs this first.
import tuijian.training  # noqa: F401
