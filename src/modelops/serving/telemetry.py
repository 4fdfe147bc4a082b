"""Prometheus metrics of the service, exposed at /metrics by BentoML.

Plain prometheus_client metrics; BentoML collects them in its workers (multi-process mode)
and tests read them from the default registry.
"""

import prometheus_client as metrics

PREDICTIONS = metrics.Counter(
    name="modelops_predictions",
    documentation="Predictions made, by decision, model version and route (shadow included)",
    labelnames=["decision", "version", "route"],
)
SCORES = metrics.Histogram(
    name="modelops_score",
    documentation="Score (positive-class probability) distribution by model version and route",
    labelnames=["version", "route"],
    buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0),
)
LATENCY = metrics.Histogram(
    name="modelops_request_latency_seconds",
    documentation="Time from validated request to answer, by endpoint",
    labelnames=["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
VALIDATION_FAILURES = metrics.Counter(
    name="modelops_validation_failures",
    documentation="Requests refused with a 4xx before scoring, by endpoint and status",
    labelnames=["endpoint", "status"],
)
LOG_WRITTEN = metrics.Counter(
    name="modelops_prediction_log_written",
    documentation="Prediction-log records written to the database",
)
LOG_WRITE_FAILURES = metrics.Counter(
    name="modelops_prediction_log_write_failures",
    documentation="Failed prediction-log writes (records stay buffered and are retried)",
)
LOG_DROPPED = metrics.Counter(
    name="modelops_prediction_log_dropped",
    documentation="Prediction-log records dropped because the buffer was full",
)
LOG_PENDING = metrics.Gauge(
    name="modelops_prediction_log_pending",
    documentation="Prediction-log records buffered, not yet written",
    multiprocess_mode="livesum",
)
STATE_CHANGES = metrics.Counter(
    name="modelops_desired_state_changes",
    documentation="Desired-state files applied or refused",
    labelnames=["outcome"],
)
BATCH_ROWS = metrics.Histogram(
    name="modelops_batch_rows",
    documentation="Rows per model call of the adaptive batcher (reason-code variants excluded)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
)
