"""Evaluation metrics for explanation maps, batched, one value per image (so confidence
intervals can be computed over images).

=======================  ==========================================  ======================
metric                   what it measures                            better
=======================  ==========================================  ======================
pointing_game            map maximum on the object mask              higher
energy_pointing_game     share of map energy on the object           higher
deletion_auc             score AUC while deleting top pixels         lower
insertion_auc            score AUC while inserting top pixels        higher
class_distortion         CDS = log(KL_t/KL_nt + 1); kl_nontarget     higher CDS / lower KL_nt
gini                     sparseness of |map|                         higher
entropy                  complexity of |map| (normalised)            lower
total_variation          roughness of the normalised map             lower
fine_detail              spectral share finer than the CAM grid      higher (resolution)
sanity_check             similarity after parameter randomisation    lower
=======================  ==========================================  ======================

``DIRECTIONS`` records these directions; values are never negated.
"""

from __future__ import annotations

from qbench.explain.evaluate.complexity import (
    entropy,
    fine_detail,
    gini,
    minmax,
    total_variation,
)
from qbench.explain.evaluate.faithfulness import (
    GameResult,
    bernoulli_kl,
    class_distortion,
    delete_top,
    deletion_auc,
    deletion_insertion,
    insertion_auc,
    pixel_ranks,
)
from qbench.explain.evaluate.localisation import energy_pointing_game, pointing_game
from qbench.explain.evaluate.randomisation import (
    map_similarity,
    parameter_layers,
    randomize_layer_,
    randomized_models,
    sanity_check,
)

DIRECTIONS: dict[str, bool] = {  # metric -> higher is better
    "pointing_game": True, "energy_pointing_game": True, "deletion_auc": False,
    "insertion_auc": True, "cds": True, "kl_nontarget": False, "kl_target": True,
    "gini": True, "entropy": False, "total_variation": False, "fine_detail": True,
    "spearman": False, "spearman_abs": False, "ssim": False, "hog": False,
}

__all__ = ["DIRECTIONS", "GameResult", "bernoulli_kl", "class_distortion", "delete_top",
           "deletion_auc", "deletion_insertion", "energy_pointing_game", "entropy", "fine_detail",
           "gini",
           "insertion_auc", "map_similarity", "minmax", "parameter_layers", "pixel_ranks",
           "pointing_game", "randomize_layer_", "randomized_models", "sanity_check",
           "total_variation"]
