"""modelops: a GitOps template for continuously retrained binary classifiers."""
