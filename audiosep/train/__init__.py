"""Training: data, mixing, trainer. Inference code never imports this package."""
