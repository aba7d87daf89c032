"""eftflow.ml: neural likelihood-ratio, score and density estimators, training and ensembles.

Method families (MadMiner's names):

=====================  =========================================  ===============================
family                 methods                                    learns
=====================  =========================================  ===============================
parameterised ratio    carl, rolr, rascal, alice, alices, cascal  log r̂(x|θ0, θ1_ref)
doubly parameterised   same, with ``doubly=True``                 log r̂(x|θ0, θ1)
morphing-aware ratio   same, with ``morphing_aware=True``         log r̂ from per-component α_c(x)
local score            sally, sallino                             t̂(x) at a reference θ
likelihood (density)   nde, scandal                               log p̂(x|θ) (conditional flow)
=====================  =========================================  ===============================

Heavy imports (torch) happen inside the sub-modules; importing this package is cheap.
"""

METHODS_RATIO = ("carl", "rolr", "rascal", "alice", "alices", "cascal")
METHODS_SCORE = ("sally", "sallino")
METHODS_DENSITY = ("nde", "scandal")
METHODS = METHODS_RATIO + METHODS_SCORE + METHODS_DENSITY

__all__ = ["METHODS", "METHODS_RATIO", "METHODS_SCORE", "METHODS_DENSITY"]
