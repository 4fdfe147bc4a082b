"""Data sets the project has never seen, for the adoption tests: one real (shipped inside
scikit-learn), one generated to be awkward."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer


def breast_cancer() -> pd.DataFrame:
    """scikit-learn's bundled Wisconsin breast-cancer data (569 rows, 30 measurements),
    with the label as text: ``diagnosis`` is 'malignant' or 'benign'."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame["diagnosis"] = np.asarray(data.target_names)[data.target.to_numpy()]
    return frame


def awkward(rows: int = 4000, seed: int = 3) -> pd.DataFrame:
    """A churn-like table: string labels Yes/No, blank strings in a numeric column, no
    time column, an id column not called ``id``, Yes/No categories, many categories."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, rows)
    monthly = rng.uniform(18, 120, rows).round(2)
    total = (tenure * monthly * rng.uniform(0.9, 1.1, rows)).round(2)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], rows, p=[0.55, 0.25, 0.2])
    partner = rng.choice(["Yes", "No"], rows)
    paperless = rng.choice(["Yes", "No"], rows, p=[0.6, 0.4])
    states = [f"S{i:02d}" for i in range(60)]
    state = rng.choice(states, rows)
    senior = rng.integers(0, 2, rows)
    logit = (
        -1.2
        - 0.04 * tenure
        + 0.02 * (monthly - 60)
        + 1.3 * (contract == "Month-to-month")
        - 0.5 * (partner == "Yes")
        + 0.4 * (paperless == "Yes")
        + 0.3 * senior
        + 0.6 * np.isin(state, states[:10])
    )
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))
    total_text = np.where(tenure == 0, " ", total.astype(str))  # new customers: blank
    return pd.DataFrame(
        {
            "customerID": [f"{i:04d}-{rng.integers(10**4):05d}" for i in range(rows)],
            "SeniorCitizen": senior,
            "Partner": partner,
            "tenure": tenure,
            "Contract": contract,
            "PaperlessBilling": paperless,
            "State": state,
            "MonthlyCharges": monthly,
            "TotalCharges": total_text,
            "Churn": np.where(churn, "Yes", "No"),
        }
    )
