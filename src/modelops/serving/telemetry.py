"""Prometheus metrics of the service, exposed at /metrics by the edge (edge.py).

Plain prometheus_client metrics, collected across BentoML's workers (multi-process mode);
tests read them from the default registry. No label takes a value from a client.
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
HTTP_REQUESTS = metrics.Counter(
    name="modelops_http_requests",
    documentation="HTTP requests answered, by endpoint (other: any path not served) and status",
    labelnames=["endpoint", "status"],
)
HTTP_DURATION = metrics.Histogram(
    name="modelops_http_request_duration_seconds",
    documentation="Time from request to answer at the service's edge, by endpoint",
    labelnames=["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
HTTP_IN_PROGRESS = metrics.Gauge(
    name="modelops_http_requests_in_progress",
    documentation="HTTP requests being answered, by endpoint",
    labelnames=["endpoint"],
    multiprocess_mode="livesum",
)
REFUSED_FIELDS = metrics.Counter(
    name="modelops_refused_fields",
    documentation="Fields at fault in refused requests (400), by schema column "
    "(other: a field the schema lacks, or the body as a whole)",
    labelnames=["field"],
)
CLIENT_ERRORS_UNLOGGED = metrics.Counter(
    name="modelops_client_errors_unlogged",
    documentation="Client errors (4xx) answered but not logged: over the log rate limit",
)
SCORING_FAILURES = metrics.Counter(
    name="modelops_scoring_failures",
    documentation="Records a model could not score (exception) or scored NaN/inf (non_finite)",
    labelnames=["version", "reason"],
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
