"""Tests of the graph recommenders (LightGCN, NGCF) and their propagation."""
