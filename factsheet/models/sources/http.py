"""A model served over HTTP with the IBM MAX REST contract (``POST /model/predict``, top-k answers).

The client (:class:`factsheet.models.http_model.HttpModelClient`) sends each clip as a 16-bit
PCM WAV, retries transient failures with capped, seeded backoff, keeps at most
``[model] concurrency`` requests in flight per process, and stops at ``[model] max_requests``.
Classes missing from an answer score 0, so AP and AUC come from truncated scores (the FactSheet
says so); HopSkipJump needs only the top-1. Counters of every request, retry and failure go
to ``provenance.model_requests``.
"""

from __future__ import annotations

from factsheet.errors import InputError
from factsheet.models.sources.base import LoadedModel, read_model_labels, resolve_clip_samples, runtime_record

#: Counters copied from the client's stats into provenance (configuration values are left out).
COUNTERS = ("requests", "successes", "retries", "failures", "gave_up", "clips", "bytes_sent", "bytes_received",
            "seconds_total", "max_in_flight")


def load(cfg, *, threads: int | None = None) -> LoadedModel:
    """``source = "http"``: ``[model] url`` (service root or its ``/model/predict`` URL)."""
    from factsheet.models.http_model import HttpModelClient

    labels = read_model_labels(cfg)
    clip_samples = resolve_clip_samples(cfg, fixed_samples=None, source=cfg.url)
    try:
        client = HttpModelClient(url=cfg.url, class_labels=labels, sample_rate=cfg.sample_rate,
                                 timeout_seconds=cfg.timeout_seconds, max_retries=cfg.max_retries,
                                 concurrency=cfg.concurrency, max_requests=cfg.max_requests)
    except ValueError as exc:
        raise InputError(source=cfg.url, field="model.url", value=cfg.url, reason=str(exc)) from None
    probe = client.probe(seconds=clip_samples / cfg.sample_rate)
    top_k = int(probe["top_k"])

    def stats() -> dict:
        s = client.stats()
        out = {k: s[k] for k in COUNTERS if k in s}
        out["max_top_k"] = s.get("top_k_seen")
        return out

    notes = [f"Scores come from an HTTP endpoint that answers with the top {top_k} classes only; every other class "
             f"scores 0, so AP, AUC and d' are computed from truncated scores and understate a model whose full "
             f"scores would rank lower classes well. HopSkipJump needs only the top-1 class and is unaffected.",
             "Each clip is sent as a 16-bit PCM WAV: the server sees audio rounded to 1/32768, so a perturbation "
             "smaller than half a step vanishes before it reaches the model.",
             "Black box: the attack uses the endpoint's decisions only."]
    runtime = runtime_record(format="HTTP endpoint (MAX REST contract: POST /model/predict, multipart WAV)",
                             runtime="http", runtime_version=None, gradients=False, adapted=None,
                             n_parameters=None, files={}, notes=notes,
                             extra={"url": client.url, "top_k": top_k})
    return LoadedModel(forward=client.forward, class_labels=labels, sample_rate=cfg.sample_rate,
                       clip_samples=clip_samples, source="http", path=None, sha256=None, runtime=runtime,
                       stats=stats)
