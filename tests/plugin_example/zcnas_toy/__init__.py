"""A toy zcnas plugin: the space `toy-mlp`, the importer `toy-bench`, the sampler `toy-first`."""
