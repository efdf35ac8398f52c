"""Search parameters: KataGo's ``SearchParams`` with the defaults of its analysis engine, read from ``.cfg`` keys.

Contract
--------
:class:`SearchParams` holds every parameter katadeploy's search uses, under KataGo's names in snake case, with
the values ``Setup::loadSingleParams(cfg, SETUP_FOR_ANALYSIS)`` (``cpp/program/setup.cpp``) gives when the key is
absent, including the derived defaults (``rootPolicyOptimism = min(policyOptimism, 0.2)``, ``rootFpuReductionMax =
0 if rootNoiseEnabled else 0.1``, ``rootFpuLossProp = fpuLossProp``, ``rootPolicyTemperatureEarly =
rootPolicyTemperature``, ``fpuParentWeight`` read only without ``fpuParentWeightByVisitedPolicy``) and the analysis
engine's own ``conservativePass = true``. Ranges are KataGo's.

:func:`load_search_params` reads them from a :class:`~katadeploy.search.config.Config` and returns
``(params, notes)``: ``notes`` are one-line reports for every KataGo feature that the config (or KataGo's default)
turns on but this port does not implement, so nothing is silently ignored. Keys KataGo reads that have no effect on
an analysis search here (time controls, backend and logging settings) are marked used by
:func:`mark_known_keys`; any other key stays unused for the caller to report.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from katadeploy.search.config import Config, ConfigError

BIG = 1 << 50


@dataclass(frozen=True)
class SearchParams:
    # utility
    win_loss_utility_factor: float = 1.0
    static_score_utility_factor: float = 0.1
    dynamic_score_utility_factor: float = 0.3
    dynamic_score_center_zero_weight: float = 0.2
    dynamic_score_center_scale: float = 0.75
    no_result_utility_for_white: float = 0.0
    draw_equivalent_wins_for_white: float = 0.5
    # exploration
    cpuct_exploration: float = 1.0
    cpuct_exploration_log: float = 0.45
    cpuct_exploration_base: float = 500.0
    cpuct_utility_stdev_prior: float = 0.40
    cpuct_utility_stdev_prior_weight: float = 2.0
    cpuct_utility_stdev_scale: float = 0.85
    fpu_reduction_max: float = 0.2
    fpu_loss_prop: float = 0.0
    fpu_parent_weight_by_visited_policy: bool = True
    fpu_parent_weight_by_visited_policy_pow: float = 2.0
    fpu_parent_weight: float = 0.0
    root_fpu_reduction_max: float = 0.1
    root_fpu_loss_prop: float = 0.0
    root_desired_per_child_visits_coeff: float = 0.0
    root_symmetry_pruning: bool = True
    num_virtual_losses_per_thread: float = 1.0
    wide_root_noise: float = 0.04
    # policy
    policy_optimism: float = 1.0
    root_policy_optimism: float = 0.2
    nn_policy_temperature: float = 1.0
    root_policy_temperature: float = 1.0
    root_policy_temperature_early: float = 1.0
    chosen_move_temperature_halflife: float = 19.0
    root_noise_enabled: bool = False
    root_dirichlet_noise_total_concentration: float = 10.83
    root_dirichlet_noise_weight: float = 0.25
    # value weighting
    value_weight_exponent: float = 0.25
    subtree_value_bias_factor: float = 0.45
    subtree_value_bias_weight_exponent: float = 0.85
    use_noise_pruning: bool = True
    noise_prune_utility_scale: float = 0.15
    noise_pruning_cap: float = 1e50
    use_uncertainty: bool = True
    uncertainty_coeff: float = 0.25
    uncertainty_exponent: float = 1.0
    uncertainty_max_weight: float = 8.0
    # move choice
    use_lcb_for_selection: bool = True
    lcb_stdevs: float = 5.0
    min_visit_prop_for_lcb: float = 0.15
    use_non_buggy_lcb: bool = True
    chosen_move_subtract: float = 0.0
    chosen_move_prune: float = 1.0
    root_ending_bonus_points: float = 0.5
    root_prune_useless_moves: bool = True
    # rules and inputs
    conservative_pass: bool = True
    enable_passing_hacks: bool = True
    playout_doubling_advantage: float = 0.0
    playout_doubling_advantage_pla: int = 0  # C_EMPTY: the player the search is for
    ignore_pre_root_history: bool = True
    ignore_all_history: bool = False
    always_compute_pass_alive_under_suicide_rules: bool | None = None  # None = auto
    # limits and threads
    max_visits: int = BIG
    max_playouts: int = BIG
    max_time: float = 1e20
    num_threads: int = 1
    nn_batches_in_flight: int = 1  # katadeploy's own key: pipelined NN batches (see search.py)

    def with_overrides(self, **kw) -> SearchParams:
        return replace(self, **kw)

    @property
    def utility_radius(self) -> float:
        return (
            self.win_loss_utility_factor
            + self.static_score_utility_factor
            + self.dynamic_score_utility_factor
        )


FIELD_NAMES = frozenset(f.name for f in fields(SearchParams))

# (cfg key, field, kind, lo, hi); kind: f=float, i=int, b=bool
_SIMPLE: tuple[tuple[str, str, str, float, float], ...] = (
    ("maxPlayouts", "max_playouts", "i", 1, BIG),
    ("maxVisits", "max_visits", "i", 1, BIG),
    ("maxTime", "max_time", "f", 0.0, 1e20),
    ("numSearchThreads", "num_threads", "i", 1, 4096),
    ("nnBatchesInFlight", "nn_batches_in_flight", "i", 1, 8),
    ("winLossUtilityFactor", "win_loss_utility_factor", "f", 0.0, 1.0),
    ("staticScoreUtilityFactor", "static_score_utility_factor", "f", 0.0, 1.0),
    ("dynamicScoreUtilityFactor", "dynamic_score_utility_factor", "f", 0.0, 1.0),
    ("noResultUtilityForWhite", "no_result_utility_for_white", "f", -1.0, 1.0),
    ("drawEquivalentWinsForWhite", "draw_equivalent_wins_for_white", "f", 0.0, 1.0),
    ("dynamicScoreCenterZeroWeight", "dynamic_score_center_zero_weight", "f", 0.0, 1.0),
    ("dynamicScoreCenterScale", "dynamic_score_center_scale", "f", 0.2, 5.0),
    ("cpuctExploration", "cpuct_exploration", "f", 0.0, 10.0),
    ("cpuctExplorationLog", "cpuct_exploration_log", "f", 0.0, 10.0),
    ("cpuctExplorationBase", "cpuct_exploration_base", "f", 10.0, 100000.0),
    ("cpuctUtilityStdevPrior", "cpuct_utility_stdev_prior", "f", 1e-8, 10.0),
    ("cpuctUtilityStdevPriorWeight", "cpuct_utility_stdev_prior_weight", "f", 0.0, 100.0),
    ("cpuctUtilityStdevScale", "cpuct_utility_stdev_scale", "f", 0.0, 1.0),
    ("fpuReductionMax", "fpu_reduction_max", "f", 0.0, 2.0),
    ("fpuLossProp", "fpu_loss_prop", "f", 0.0, 1.0),
    ("fpuParentWeightByVisitedPolicy", "fpu_parent_weight_by_visited_policy", "b", 0, 0),
    ("policyOptimism", "policy_optimism", "f", 0.0, 1.0),
    ("valueWeightExponent", "value_weight_exponent", "f", 0.0, 1.0),
    ("subtreeValueBiasFactor", "subtree_value_bias_factor", "f", 0.0, 1.0),
    ("subtreeValueBiasWeightExponent", "subtree_value_bias_weight_exponent", "f", 0.0, 1.0),
    ("useNoisePruning", "use_noise_pruning", "b", 0, 0),
    ("noisePruneUtilityScale", "noise_prune_utility_scale", "f", 0.001, 10.0),
    ("noisePruningCap", "noise_pruning_cap", "f", 0.0, 1e50),
    ("useUncertainty", "use_uncertainty", "b", 0, 0),
    ("uncertaintyCoeff", "uncertainty_coeff", "f", 0.0001, 1.0),
    ("uncertaintyExponent", "uncertainty_exponent", "f", 0.0, 2.0),
    ("uncertaintyMaxWeight", "uncertainty_max_weight", "f", 1.0, 100.0),
    ("rootNoiseEnabled", "root_noise_enabled", "b", 0, 0),
    ("rootDirichletNoiseTotalConcentration", "root_dirichlet_noise_total_concentration", "f", 0.001, 10000.0),
    ("rootDirichletNoiseWeight", "root_dirichlet_noise_weight", "f", 0.0, 1.0),
    ("rootPolicyTemperature", "root_policy_temperature", "f", 0.01, 100.0),
    ("rootDesiredPerChildVisitsCoeff", "root_desired_per_child_visits_coeff", "f", 0.0, 100.0),
    ("rootSymmetryPruning", "root_symmetry_pruning", "b", 0, 0),
    ("chosenMoveTemperatureHalflife", "chosen_move_temperature_halflife", "f", 0.1, 100000.0),
    ("chosenMoveSubtract", "chosen_move_subtract", "f", 0.0, 1.0e10),
    ("chosenMovePrune", "chosen_move_prune", "f", 0.0, 1.0e10),
    ("useLcbForSelection", "use_lcb_for_selection", "b", 0, 0),
    ("lcbStdevs", "lcb_stdevs", "f", 1.0, 12.0),
    ("minVisitPropForLCB", "min_visit_prop_for_lcb", "f", 0.0, 1.0),
    ("useNonBuggyLcb", "use_non_buggy_lcb", "b", 0, 0),
    ("rootEndingBonusPoints", "root_ending_bonus_points", "f", -1.0, 1.0),
    ("rootPruneUselessMoves", "root_prune_useless_moves", "b", 0, 0),
    ("conservativePass", "conservative_pass", "b", 0, 0),
    ("wideRootNoise", "wide_root_noise", "f", 0.0, 5.0),
    ("enablePassingHacks", "enable_passing_hacks", "b", 0, 0),
    ("playoutDoublingAdvantage", "playout_doubling_advantage", "f", -3.0, 3.0),
    ("nnPolicyTemperature", "nn_policy_temperature", "f", 0.01, 5.0),
    ("ignorePreRootHistory", "ignore_pre_root_history", "b", 0, 0),
    ("ignoreAllHistory", "ignore_all_history", "b", 0, 0),
    ("numVirtualLossesPerThread", "num_virtual_losses_per_thread", "f", 0.01, 1000.0),
)

#: KataGo keys that are read but change nothing in an analysis search (GTP time management, pondering) - as in
#: KataGo's own analysis engine.
NO_EFFECT_IN_ANALYSIS = frozenset(
    """maxPlayoutsPondering maxVisitsPondering maxTimePondering lagBuffer searchFactorAfterOnePass
    searchFactorAfterTwoPass minPlayoutsPerThread treeReuseCarryOverTimeFactor overallocateTimeFactor
    midgameTimeFactor midgameTurnPeakTime endgameTurnTimeDecay obviousMovesTimeFactor
    obviousMovesPolicyEntropyTolerance obviousMovesPolicySurpriseTolerance chosenMoveTemperature
    chosenMoveTemperatureEarly chosenMoveTemperatureOnlyBelowProb nodeTableShardsPowerOfTwo
    subtreeValueBiasTableNumShards subtreeValueBiasFreeProp graphSearchRepBound
    graphSearchCatchUpLeakProb evalCacheMinVisits enableMorePassingHacks numBots""".split()
)

#: Keys for KataGo's neural-net backends, logging and process setup: they have no meaning for katadeploy's
#: evaluators. The caller reports them as having no effect.
BACKEND_KEYS_PREFIXES = (
    "opencl", "cuda", "trt", "metal", "coreml", "eigen", "numEigenThreads", "gpuToUse", "deviceToUse",
    "numNNServerThreads", "nnMutexPoolSizePowerOfTwo", "homeDataDir", "logDir", "logFile", "logToStderr",
    "logTimeStamp", "logConfigContents", "logErrorsAndWarnings", "nnModelFile",
    "inputsUseNHWC", "useNHWC", "useFP16", "forDeterministicTesting", "dotNetUseFP16",
)  # fmt: skip

#: KataGo features this port does not implement: (key, field kind, KataGo's analysis default, neutral value).
NOT_PORTED: tuple[tuple[str, str, str, str], ...] = (
    ("useGraphSearch", "b", "true", "false"),
    ("rootNumSymmetriesToSample", "i", "1", "1"),
    ("antiMirror", "b", "false", "false"),
    ("avoidRepeatedPatternUtility", "f", "0", "0"),
    ("fillDameBeforePass", "b", "false", "false"),
    ("futileVisitsThreshold", "f", "0", "0"),
    ("useEvalCache", "b", "false", "false"),
    ("humanSLProfile", "s", "", ""),
    ("humanSLCpuctExploration", "f", "1", "1"),
    ("humanSLCpuctPermanent", "f", "0", "0"),
    ("humanSLRootExploreProbWeightless", "f", "0", "0"),
    ("humanSLRootExploreProbWeightful", "f", "0", "0"),
    ("humanSLPlaExploreProbWeightless", "f", "0", "0"),
    ("humanSLPlaExploreProbWeightful", "f", "0", "0"),
    ("humanSLOppExploreProbWeightless", "f", "0", "0"),
    ("humanSLOppExploreProbWeightful", "f", "0", "0"),
    ("humanSLChosenMoveProp", "f", "0", "0"),
    ("humanSLChosenMoveIgnorePass", "b", "false", "false"),
    ("humanSLChosenMovePiklLambda", "f", "1000000000", "1000000000"),
)


def _neutral(kind: str, value: str, neutral: str) -> bool:
    v = value.strip().lower()
    if kind == "b":
        return (v in ("true", "1")) == (neutral == "true")
    if kind in ("f", "i"):
        try:
            return float(v) == float(neutral)
        except ValueError:
            return False
    return v == neutral


def _parse_player(key: str, text: str) -> int:
    t = text.strip().lower()
    if t in ("b", "black"):
        return 1
    if t in ("w", "white"):
        return 2
    raise ConfigError(f"could not parse player for {key}: {text!r}")


def load_search_params(cfg: Config) -> tuple[SearchParams, list[str]]:
    """KataGo's analysis-engine ``SearchParams`` from ``cfg`` and notes on features that are not ported."""
    kw: dict[str, object] = {}
    for key, name, kind, lo, hi in _SIMPLE:
        if key not in cfg:
            if key == "numSearchThreads":
                raise ConfigError(f"{cfg.origin}: could not find key 'numSearchThreads'")
            continue
        if kind == "f":
            kw[name] = cfg.get_float(key, lo, hi)
        elif kind == "i":
            kw[name] = cfg.get_int(key, int(lo), int(hi))
        else:
            kw[name] = cfg.get_bool(key)
    by_visited = kw.get("fpu_parent_weight_by_visited_policy", True)
    if by_visited:
        if "fpuParentWeightByVisitedPolicyPow" in cfg:
            kw["fpu_parent_weight_by_visited_policy_pow"] = cfg.get_float(
                "fpuParentWeightByVisitedPolicyPow", 0, 5
            )
    elif "fpuParentWeight" in cfg:
        kw["fpu_parent_weight"] = cfg.get_float("fpuParentWeight", 0.0, 1.0)
    cfg.mark_used(["fpuParentWeight", "fpuParentWeightByVisitedPolicyPow"])
    root_temp = float(kw.get("root_policy_temperature", 1.0))  # type: ignore[arg-type]
    kw["root_policy_temperature_early"] = (
        cfg.get_float("rootPolicyTemperatureEarly", 0.01, 100.0)
        if "rootPolicyTemperatureEarly" in cfg
        else root_temp
    )
    noise = bool(kw.get("root_noise_enabled", False))
    kw["root_fpu_reduction_max"] = (
        cfg.get_float("rootFpuReductionMax", 0.0, 2.0)
        if "rootFpuReductionMax" in cfg
        else (0.0 if noise else 0.1)
    )
    kw["root_fpu_loss_prop"] = (
        cfg.get_float("rootFpuLossProp", 0.0, 1.0)
        if "rootFpuLossProp" in cfg
        else kw.get("fpu_loss_prop", 0.0)
    )
    optimism = float(kw.get("policy_optimism", 1.0))  # type: ignore[arg-type]
    kw["root_policy_optimism"] = (
        cfg.get_float("rootPolicyOptimism", 0.0, 1.0) if "rootPolicyOptimism" in cfg else min(optimism, 0.2)
    )
    if "playoutDoublingAdvantagePla" in cfg:
        kw["playout_doubling_advantage_pla"] = _parse_player(
            "playoutDoublingAdvantagePla", cfg.get_string("playoutDoublingAdvantagePla")
        )
    if "alwaysComputePassAliveUnderSuicideRules" in cfg:
        kw["always_compute_pass_alive_under_suicide_rules"] = cfg.get_enabled(
            "alwaysComputePassAliveUnderSuicideRules"
        )
    notes: list[str] = []
    for key, kind, default, neutral in NOT_PORTED:
        value = cfg.get_string(key) if key in cfg else default
        if not _neutral(kind, value, neutral):
            where = "set in the config" if key in cfg else "KataGo's analysis default"
            notes.append(
                f"{key} = {value} ({where}) is not implemented by katadeploy's search; running without it"
            )
    return SearchParams(**kw), notes  # type: ignore[arg-type]


def mark_known_keys(cfg: Config) -> list[str]:
    """Mark keys with no effect here as used; return the backend/logging ones (to report as having no effect)."""
    cfg.mark_used(NO_EFFECT_IN_ANALYSIS)
    backend = [k for k in cfg.values if k.startswith(BACKEND_KEYS_PREFIXES)]
    cfg.mark_used(backend)
    return sorted(backend)
