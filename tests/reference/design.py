"""cohort's design matrix in pandas, for the reference scripts: string columns one-hot against
their most frequent training level (ties by name), numeric NULLs imputed by the training mean,
numeric columns standardised by the training mean and population standard deviation (as
cohort does) when asked."""
import pandas as pd


def encoding(train):
    """Per design column of `train`: (name, the column from a frame, training mean, training
    standard deviation); a one-hot level has mean 0 and deviation 1 (it is not scaled)."""
    columns = []
    for name in train.columns:
        col = train[name]
        if not pd.api.types.is_numeric_dtype(col):
            counts = col.value_counts()
            reference = sorted(counts[counts == counts.max()].index)[0]
            for level in sorted(set(col.dropna()) - {reference}):
                columns.append((f"{name}={level}",
                                lambda f, name=name, level=level: (f[name] == level).astype(float),
                                0.0, 1.0))
        else:
            mean = col.mean()
            columns.append((name,
                            lambda f, name=name, mean=mean: f[name].fillna(mean).astype(float),
                            mean, col.std(ddof=0)))
    return columns


def design(train, test, standardize=False):
    """The design of `train` and of `test` (encoded as `train`), standardised if asked."""
    columns = encoding(train)

    def frame(data):
        return pd.DataFrame({
            name: (column(data) - mean) / std if standardize else column(data)
            for name, column, mean, std in columns
        })

    return frame(train), frame(test)
