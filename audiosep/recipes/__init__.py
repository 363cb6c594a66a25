"""Dataset recipes: reproducible scripts that build training data from public sources.

Recipes are training-side tools; the inference library never imports them.
"""
