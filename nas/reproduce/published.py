"""Published figures the results set ours beside, with where each comes from."""

from __future__ import annotations

from nas.reproduce.plan import AZ

OWN_NETWORK_PUBLISHED = {"ensemble": ("VKDNW_agg", 0.753, 0.743), "az_nas": ("AZ-NAS, VKDNW's re-run", 0.696, 0.673)}

# unknown protocol; the AZ-NAS notebook used all 15,625 cells (CIFAR-10 only).
VKDNW = {  # label -> (C10, C100, IN16)
    "flops": (0.623, 0.586, 0.545),
    "grad_norm": (0.328, 0.341, 0.310),
    "grasp": (0.352, 0.349, 0.359),
    "snip": (0.431, 0.440, 0.389),
    "synflow": (0.561, 0.553, 0.531),
    "jacob_cov": (0.616, 0.639, 0.602),
    "naswot": (0.571, 0.607, 0.605),
    "zico": (0.607, 0.614, 0.587),
    "az_nas": (0.712, 0.696, 0.673),
}
PUBLISHED_OTHER = {
    "near": ((0.70, 0.69, 0.66), "NEAR paper Table 1 (protocol not stated)"),
    "ensemble": (
        (0.7409, None, None),
        "AZ-NAS notebook, all 15,625 cells (AZ-NAS paper: 0.741/0.723/0.710); VKDNW_agg 0.750/0.753/0.743 on 9,445",
    ),
    "az_nas": ((0.7409, None, None), "AZ-NAS notebook, all 15,625 cells (AZ-NAS paper: 0.741/0.723/0.710)"),
}
# Zero-Cost Proxies notebook, |Spearman rho| over all 15,625 cells (C10 from `cifar10-valid`).
ZC_SPEARMAN = {
    "grad_norm": (0.594, 0.637, 0.578),
    "snip": (0.596, 0.637, 0.578),
    "grasp": (0.514, 0.547, 0.549),
    "fisher": (0.360, 0.385, 0.327),
    "synflow": (0.737, 0.763, 0.751),
    "jacob_cov": (0.731, 0.704, 0.701),
}
MECO_SPEARMAN = (0.894, 0.883, 0.845)
# Columns of the authors' code in peer_scores_nb201_500.csv, by our label.
PEER_COLUMNS = {
    "near": "near_R1",
    "synflow": "synflow",
    "jacob_cov": "jacob_cov",
    "snip": "snip",
    "grad_norm": "grad_norm",
    "grasp": "grasp",
    "fisher": "fisher",
    "naswot": "naswot",
    "zico": "zico",
    "params": "params",
    "flops": "flops",
    "ensemble": "az_nas",
    **{name: name for name in AZ},
    "az_nas": "az_nas",
}
# NASLib's released scores (NAS-Bench-Suite-Zero, `naslib_zc_nb201.csv`): our label -> their column.
NASLIB_COLUMNS = {
    "synflow": "synflow",
    "naswot": "nwot",
    "params": "params",
    "flops": "flops",
    "snip": "snip",
    "grad_norm": "grad_norm",
    "jacob_cov": "jacov",
    "fisher": "fisher",
    "grasp": "grasp",
}
NASLIB_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet16"}
NB101_PUBLISHED = {  # |Spearman rho| over 423,624 cells (Zero-Cost Proxies notebook); NEAR tau/rho
    "grad_norm": 0.198,
    "snip": 0.164,
    "grasp": 0.448,
    "fisher": 0.257,
    "synflow": 0.372,
    "jacob_cov": 0.378,
}
