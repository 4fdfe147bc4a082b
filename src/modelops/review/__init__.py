"""Review: the pull-request check (champion, repro, comparison, gates, report)."""
