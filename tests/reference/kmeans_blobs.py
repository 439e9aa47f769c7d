"""Reference k-means results from scikit-learn for tests/integration/kmeans_reference.rs.

Writes tests/data/kmeans_blobs.csv (3,000 points in 4-D around 5 centres of different
spreads, from numpy's seeded generator) and tests/reference/kmeans_blobs.csv: for
standardize = false (raw columns) and standardize = true (StandardScaler, population
standard deviation, as cohort), KMeans(n_clusters=5, n_init=10, algorithm='lloyd')'s
final inertia and its centroids in the original units, sorted by cluster size
(largest first), as cohort numbers its segments.

    python tests/reference/kmeans_blobs.py
"""
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[2]
rng = np.random.default_rng(20261123)
centres = np.array(
    [[0, 0, 0, 0], [6, 1, -3, 2], [-4, 5, 2, -1], [3, -5, 4, 6], [-6, -4, -5, 3]], float
)
sizes = [900, 750, 600, 450, 300]
spreads = [1.0, 1.3, 0.8, 1.1, 0.9]
points = np.vstack(
    [c + rng.normal(scale=s, size=(n, 4)) for c, n, s in zip(centres, sizes, spreads)]
)
points = points * np.array([1.0, 10.0, 0.5, 100.0])  # columns on different scales
points = np.round(points, 6)
rng.shuffle(points)
data = ROOT / "tests/data/kmeans_blobs.csv"
np.savetxt(data, points, delimiter=",", header="a,b,c,d", comments="", fmt="%.6f")

rows = ["standardize,kind,segment,size,inertia,a,b,c,d"]
for standardize in [False, True]:
    scaler = StandardScaler().fit(points)
    x = scaler.transform(points) if standardize else points
    km = KMeans(n_clusters=5, n_init=10, algorithm="lloyd", random_state=0, tol=1e-6).fit(x)
    centroids = scaler.inverse_transform(km.cluster_centers_) if standardize else km.cluster_centers_
    counts = np.bincount(km.labels_, minlength=5)
    order = np.argsort(-counts, kind="stable")
    for seg, j in enumerate(order, start=1):
        values = ",".join(f"{v:.12g}" for v in centroids[j])
        rows.append(f"{str(standardize).lower()},centroid,{seg},{counts[j]},{km.inertia_:.12g},{values}")
(ROOT / "tests/reference/kmeans_blobs.csv").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
