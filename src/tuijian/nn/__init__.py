"""Shared torch building blocks: losses, negative samplers, MLPs."""
