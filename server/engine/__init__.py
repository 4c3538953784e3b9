"""The pure compute core: tensors and arrays in, typed results out. No web imports here."""
