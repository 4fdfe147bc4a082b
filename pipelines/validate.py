"""Stage validate: read raw data from the configured source, prepare it as the schema
says (trim, missing-value markers, target to 0/1), check it against the schema, write it
typed and in schema column order."""

import logging

from modelops import paths
from modelops.config import Settings
from modelops.data.prepare import prepare
from modelops.data.sources import read_raw
from modelops.data.validation import summarize, validate
from modelops.io import write_json, write_parquet
from modelops.stage import run_stage


def main(settings: Settings, log: logging.Logger) -> None:
    """Validate raw data against the schema."""
    source = settings.data
    log.info("reading %s (source: %s)", source.path, source.source)
    raw = read_raw(source.source, source.path)
    schema = settings.data_schema
    log.info("checking %s rows against %d schema columns", f"{len(raw):,}", len(schema.columns))
    prepared = prepare(raw, schema, source=str(source.path))
    valid = validate(prepared, schema, source=str(source.path), raw=raw)
    summary = summarize(valid, schema)
    write_parquet(valid, paths.VALIDATED)
    write_json(summary, paths.VALIDATION_REPORT)
    log.info("valid: %s rows, positive rate %.4f", f"{summary['rows']:,}", summary["positive_rate"])


if __name__ == "__main__":
    run_stage("validate", main)
