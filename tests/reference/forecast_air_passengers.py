"""Reference forecasts for tests/integration/reference_accuracy.rs: statsmodels' ETSModel with AICc
selection on the air passengers series.

Copies ../shared/datasets/air_passengers.csv to tests/data/air_passengers.csv, fits every
ETS model cohort considers for positive monthly data (error A or M; trend none, additive or
additive damped; season none, additive or multiplicative, period 12; additive error with
multiplicative season left out) to January 1949 - December 1959 by maximum likelihood,
keeps the lowest AICc, forecasts the 12 months of 1960 and writes
tests/reference/forecast_air_passengers.csv: one row per model tried (model, aicc), the
chosen model marked, and its forecasts and MAPE (as a fraction).

statsmodels counts m initial seasonal states among the parameters, though it holds one of
them fixed (the seasonal states can be shifted or scaled against the level and slope without
changing a single mean, so only m - 1 are free). R's forecast::ets, the reference
implementation of Hyndman et al., and cohort count the m - 1 free ones. For a like-for-like
comparison the script also writes, per model, the AICc of statsmodels' own fit with the
parameters counted that way (rows "aicc_r"): same log-likelihood, one parameter fewer for a
seasonal model.

    python tests/reference/forecast_air_passengers.py
"""
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT.parent / "shared/datasets/air_passengers.csv"
shutil.copyfile(SOURCE, ROOT / "tests/data/air_passengers.csv")

data = pd.read_csv(SOURCE)
data.index = pd.period_range("1949-01", periods=len(data), freq="M")
y = data["Passengers"].astype(float)
train, test = y[y.index.year < 1960], y[y.index.year == 1960]

fits = []
counted_as_r = []
for error in ["add", "mul"]:
    for trend, damped in [(None, False), ("add", False), ("add", True)]:
        for seasonal in [None, "add", "mul"]:
            if error == "add" and seasonal == "mul":
                continue
            model = ETSModel(
                train,
                error=error,
                trend=trend,
                damped_trend=damped,
                seasonal=seasonal,
                seasonal_periods=12 if seasonal else None,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = model.fit(disp=False, maxiter=10_000)
            name = "ETS({},{},{})".format(
                error[0].upper(),
                "N" if trend is None else ("Ad" if damped else "A"),
                "N" if seasonal is None else seasonal[0].upper(),
            )
            fits.append((result.aicc, name, result))
            if seasonal:
                k = result.df_model - 1
                n = result.nobs
                aicc_r = -2 * result.llf + 2 * k + 2 * k * (k + 1) / (n - k - 1)
            else:
                aicc_r = result.aicc
            counted_as_r.append((float(aicc_r), name))

fits.sort(key=lambda f: f[0])
aicc, name, best = fits[0]
forecast = np.asarray(best.forecast(len(test)))
mape = float(np.mean(np.abs(test.values - forecast) / np.abs(test.values)))

with open(ROOT / "tests/reference/forecast_air_passengers.csv", "w") as out:
    out.write("what,value,name\n")
    for a, n, _ in fits:
        out.write(f"aicc,{float(a)!r},{n}\n")
    for a, n in counted_as_r:
        out.write(f"aicc_r,{a!r},{n}\n")
    out.write(f"chosen,{float(aicc)!r},{name}\n")
    for month, value in zip(test.index, forecast):
        out.write(f"forecast,{float(value)!r},{month}\n")
    out.write(f"mape,{mape!r},{name}\n")
print(name, aicc, "MAPE", mape)
