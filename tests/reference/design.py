"""cohort's design matrix in pandas, for the reference scripts: string columns one-hot against
their most frequent training level (ties by name), numeric NULLs imputed by the training mean,
numeric columns standardised by the training mean and standard deviation when asked."""
import pandas as pd


def design(train, test, standardize=False):
    out_train, out_test = {}, {}
    for name in train.columns:
        col, other = train[name], test[name]
        if not pd.api.types.is_numeric_dtype(col):
            counts = col.value_counts()
            reference = sorted(counts[counts == counts.max()].index)[0]
            for level in sorted(set(col.dropna()) - {reference}):
                out_train[f"{name}={level}"] = (col == level).astype(float)
                out_test[f"{name}={level}"] = (other == level).astype(float)
        else:
            mean = col.mean()
            scale = col.std() if standardize else 1.0
            out_train[name] = ((col.fillna(mean) - mean) / scale if standardize
                               else col.fillna(mean).astype(float))
            out_test[name] = ((other.fillna(mean) - mean) / scale if standardize
                              else other.fillna(mean).astype(float))
    return pd.DataFrame(out_train), pd.DataFrame(out_test)
