"""The offline evaluator: a bundled classifier per data set and sample-quality metrics.

    evaluate(generator=None, samples=None, n=10000, ...) -> metrics dict   (`mnistgan evaluate`)
    evaluate_module(G, z_dim, dataset, n, device) -> metrics dict          (`train --eval-every`)
    metrics_document(row, dataset, source) -> metrics.json content (adds the real row)
    predict(paths, dataset="mnist") -> {"labels", "confidence", ...}       (`mnistgan predict`)

Modules: classifier.py (the CNN and its pinned weights), metrics.py (FID, IS, class statistics,
precision/recall, density/coverage), reference.py (cached test-set features), inputs.py
(.npz / PNG reading), api.py (the functions above), table.py (readable output).
"""

from .api import evaluate, evaluate_module, metrics_document, predict

__all__ = ["evaluate", "evaluate_module", "metrics_document", "predict"]
