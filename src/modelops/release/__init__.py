"""Releasing model versions by GitOps: the registry (GTO tags in git) and what each
environment serves (deploy/environments/<env>.yaml, changed by pull request)."""
