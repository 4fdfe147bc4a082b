"""Monitoring: drift, decay and control charts over the prediction log, the monitoring
report and verdict, and the time-lapse."""
