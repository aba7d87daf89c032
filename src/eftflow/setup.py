"""The analysis set-up: parameters, benchmarks, morphing and systematics (MadMiner's ``MadMiner``).

A MadMiner notebook translates line by line::

    # MadMiner                                   # eftflow
    from madminer import MadMiner                from eftflow import MadMiner   # = EFTSetup
    miner = MadMiner()                           miner = MadMiner()
    miner.add_parameter(lha_block="dim6", lha_id=2, parameter_name="CWL2",
                        morphing_max_power=2, parameter_range=(-20.0, 20.0))    # same call
    miner.add_benchmark({"CWL2": 0.0}, "sm")      # same call
    miner.set_morphing(include_existing_benchmarks=True, max_overall_power=2)  # same (+ seed=)
    miner.add_systematics("norm", "lumi", norm_variation=1.02)                 # same
    miner.save("setup.h5")                        # same file layout; MadMiner reads it
    miner.load("setup.h5")                        # reads MadMiner's files too

Example
-------
>>> s = EFTSetup()
>>> s.add_parameter("eft", 1, "a", morphing_max_power=2, parameter_range=(-1, 1))
>>> s.add_benchmark({"a": 0.0}, "sm")
>>> s.set_morphing(max_overall_power=2, seed=1)
>>> len(s.benchmarks), s.morpher.n_components
(3, 3)
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError, EftflowError, InputError, MorphingError
from eftflow.physics.morphing import Morpher, find_components, optimize_basis
from eftflow.physics.parameters import Benchmark, NuisanceParameter, Parameter, Systematic

__all__ = ["EFTSetup", "MadMiner"]

log = logging.getLogger(__name__)


class EFTSetup:
    """Parameters, benchmarks, morphing basis and systematics of one analysis."""

    def __init__(self):
        self.parameters: dict[str, Parameter] = {}
        self.benchmarks: dict[str, Benchmark] = {}
        self.components: np.ndarray | None = None
        self.morphing_matrix: np.ndarray | None = None
        self.systematics: dict[str, Systematic] = {}
        self.nuisance_parameters: dict[str, NuisanceParameter] = {}
        self.finite_difference_benchmarks: dict[str, dict[str, str]] = {}
        self.finite_difference_epsilon: float | None = None
        self.morphing_criterion: float | None = None

    # --- parameters -------------------------------------------------------------------------
    def add_parameter(
        self,
        lha_block: str,
        lha_id: int,
        parameter_name: str | None = None,
        param_card_transform: str | None = None,
        morphing_max_power: int = 2,
        parameter_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        """Declare a parameter (same signature as MadMiner's ``add_parameter``)."""
        name = parameter_name or f"parameter_{len(self.parameters)}"
        if name in self.parameters:
            raise ConfigError(f"duplicate parameter name {name!r}", field="parameters")
        if self.benchmarks:
            raise ConfigError(
                "declare all parameters before the first benchmark", field="parameters"
            )
        self.parameters[name] = Parameter(
            name,
            str(lha_block),
            int(lha_id),
            morphing_max_power,
            tuple(parameter_range),
            param_card_transform,
        )
        self._reset_morphing()

    def set_parameters(self, parameters: dict | list) -> None:
        """Replace all parameters: a list of dicts (config form) or of :class:`Parameter`."""
        self.parameters = {}
        self.benchmarks = {}
        items = parameters.values() if isinstance(parameters, dict) else parameters
        for p in items:
            if isinstance(p, Parameter):
                p = asdict(p)
            p = dict(p)
            self.add_parameter(
                p.get("lha_block", "eft"),
                p.get("lha_id", 1),
                p.get("name") or p.get("parameter_name"),
                p.get("param_card_transform"),
                p.get("morphing_max_power", 2),
                tuple(p.get("parameter_range", (0.0, 1.0))),
            )

    @property
    def parameter_names(self) -> list[str]:
        return list(self.parameters)

    # --- benchmarks -------------------------------------------------------------------------
    def add_benchmark(
        self, parameter_values: dict[str, float], benchmark_name: str | None = None, verbose=True
    ):
        """Declare a benchmark θ_b (same signature as MadMiner's ``add_benchmark``)."""
        if not self.parameters:
            raise ConfigError("declare parameters before benchmarks", field="benchmarks")
        name = benchmark_name or f"benchmark_{len(self.benchmarks)}"
        if name in self.benchmarks:
            raise ConfigError(f"duplicate benchmark name {name!r}", field="benchmarks")
        unknown = [k for k in parameter_values if k not in self.parameters]
        if unknown:
            raise ConfigError(
                f"unknown parameter {unknown[0]!r}; declared: {', '.join(self.parameters)}",
                field=f"benchmarks.{name}.values.{unknown[0]}",
            )
        values = {p: float(parameter_values.get(p, 0.0)) for p in self.parameters}
        for p, v in values.items():
            if not np.isfinite(v):
                raise ConfigError(
                    f"value must be finite, got {v}", field=f"benchmarks.{name}.values.{p}"
                )
            self.parameters[p].check_card_value([v], what=f"the value of benchmark {name!r}")
        self.benchmarks[name] = Benchmark(name, values)
        if verbose:
            log.info("added benchmark %s: %s", name, values)
        self._reset_morphing()

    def set_benchmarks(self, benchmarks: dict | list) -> None:
        """Replace all benchmarks: ``{name: {param: value}}``, or a list of value dicts."""
        self.benchmarks = {}
        if isinstance(benchmarks, dict):
            for name, values in benchmarks.items():
                self.add_benchmark(values, name, verbose=False)
        else:
            for values in benchmarks:
                if "values" in values:
                    self.add_benchmark(values["values"], values.get("name"), verbose=False)
                else:
                    self.add_benchmark(values, verbose=False)

    def physics_benchmarks(self) -> list[Benchmark]:
        return [b for b in self.benchmarks.values() if not b.is_nuisance]

    @property
    def reference_benchmark(self) -> str:
        """The nominal benchmark of the nuisance weights: the one flagged ``is_reference``, else
        the first physics benchmark (MadMiner's rule)."""
        phys = self.physics_benchmarks()
        if not phys:
            raise ConfigError("the setup has no benchmarks", field="benchmarks")
        return next((b.name for b in phys if b.is_reference), phys[0].name)

    def benchmark_array(self) -> np.ndarray:
        """Physics benchmarks as an array (n_benchmarks, n_parameters)."""
        names = self.parameter_names
        return np.array([b.vector(names) for b in self.physics_benchmarks()]).reshape(
            -1, len(names)
        )

    # --- morphing ---------------------------------------------------------------------------
    def _reset_morphing(self) -> None:
        self.components = None
        self.morphing_matrix = None

    def set_morphing(
        self,
        max_overall_power: int = 4,
        n_bases: int = 1,
        include_existing_benchmarks: bool = True,
        n_trials: int = 100,
        n_test_thetas: int = 100,
        *,
        n_benchmarks: int | None = None,
        seed: int = 0,
    ) -> None:
        """Find the morphing components and complete/optimise the benchmark basis.

        Same arguments as MadMiner's ``set_morphing`` (``n_bases`` > 1 is not supported: one
        basis per setup), plus ``n_benchmarks`` (a basis larger than the number of components
        is over-determined and solved by least squares) and an explicit ``seed``.
        """
        if n_bases != 1:
            raise ConfigError("only n_bases=1 is supported", field="morphing.n_bases")
        if not self.parameters:
            raise ConfigError("declare parameters before set_morphing", field="parameters")
        powers = [p.morphing_max_power for p in self.parameters.values()]
        components = find_components(powers, max_overall_power)
        n_b = components.shape[0] if n_benchmarks is None else int(n_benchmarks)
        existing = (
            self.benchmark_array() if include_existing_benchmarks else np.zeros((0, len(powers)))
        )
        if not include_existing_benchmarks:
            self.benchmarks = {}
        if n_b < components.shape[0]:
            raise MorphingError(
                f"{n_b} benchmarks cannot span {components.shape[0]} morphing components "
                f"(powers {components.tolist()}): at least {components.shape[0]} are needed",
                field="morphing.n_benchmarks",
            )
        if existing.shape[0] > n_b:
            n_b = existing.shape[0]
        ranges = [p.parameter_range for p in self.parameters.values()]
        basis, crit = optimize_basis(
            components,
            ranges,
            n_benchmarks=n_b,
            fixed_benchmarks=existing,
            n_trials=n_trials,
            n_test_thetas=n_test_thetas,
            seed=seed,
        )
        for row in basis[existing.shape[0] :]:
            name = f"morphing_basis_vector_{len(self.benchmarks)}"
            while name in self.benchmarks:
                name += "_"
            self.add_benchmark(dict(zip(self.parameter_names, row)), name, verbose=False)
        self.components = components
        self.morphing_matrix = Morpher(components, self.benchmark_array()).matrix
        self.morphing_criterion = crit
        log.info(
            "morphing: %d components, %d benchmarks, expected sum of squared weights %.3g",
            components.shape[0],
            len(self.physics_benchmarks()),
            crit,
        )

    @property
    def morpher(self) -> Morpher:
        """The :class:`~eftflow.physics.morphing.Morpher` of this setup."""
        if self.components is None or self.morphing_matrix is None:
            raise MorphingError("morphing is not set up: call set_morphing first")
        return Morpher.from_matrix(self.components, self.benchmark_array(), self.morphing_matrix)

    # --- finite differences -----------------------------------------------------------------
    def finite_differences(self, epsilon: float = 0.01) -> None:
        """Add θ_b + ε e_p benchmarks for every physics benchmark (for scores without morphing)."""
        if not epsilon > 0:
            raise ConfigError(
                f"epsilon must be positive, got {epsilon}", field="finite_differences.epsilon"
            )
        base = list(self.physics_benchmarks())
        mapping = {}
        saved = (self.components, self.morphing_matrix)
        for b in base:
            mapping[b.name] = {}
            for p in self.parameter_names:
                name = f"{b.name}_plus_{p}"
                values = dict(b.values)
                values[p] += epsilon
                self.add_benchmark(values, name, verbose=False)
                mapping[b.name][p] = name
        self.components, self.morphing_matrix = saved
        if saved[1] is not None:  # extra benchmarks: extend the morphing matrix by zeros
            extra = len(self.physics_benchmarks()) - saved[1].shape[1]
            self.morphing_matrix = np.hstack([saved[1], np.zeros((saved[1].shape[0], extra))])
        self.finite_difference_benchmarks = mapping
        self.finite_difference_epsilon = float(epsilon)

    # --- systematics ------------------------------------------------------------------------
    def add_systematics(
        self,
        effect: str = "norm",
        systematic_name: str | None = None,
        norm_variation: float = 1.1,
        scale: str = "mu",
        scale_variations=(0.5, 1.0, 2.0),
        pdf_variation: str = "CT10",
        pdf_members: int | None = None,
    ) -> None:
        """Declare a systematic uncertainty (same signature as MadMiner's ``add_systematics``).

        A ``norm`` systematic defines its nuisance parameter at once (one-sided, MadMiner's
        naming ``<name>_nuisance_param_0`` with benchmark ``..._benchmark_0``, weight × variation).
        So does a ``scale`` systematic: ``..._benchmark_0`` is its last scale factor (ν = +1),
        ``..._benchmark_1`` its first (ν = −1; one-sided for a single factor), filled from the
        generator's scale-variation weights (:mod:`eftflow.generate.systematics`). A ``pdf``
        systematic (``pdf_variation``: the LHAPDF set) has one two-sided nuisance parameter for
        the set's whole uncertainty, ``..._benchmark_0``/``_1`` at ν = ±1, filled from the PDF
        member weights of MadGraph's systematics module. With ``pdf_members=N`` it has instead,
        as MadMiner, one one-sided nuisance parameter per member, ``<name>_nuisance_param_k``
        (k = 1 … N, the members after the central one in PDF-id order, MadMiner's numbering),
        each with ``..._benchmark_0`` = the reference weight × member k / central member.
        """
        if systematic_name is None:
            i = 0
            while f"{effect}_{i}" in self.systematics:
                i += 1
            systematic_name = f"{effect}_{i}"
        name = systematic_name.replace(" ", "_").replace("-", "_")
        if name in self.systematics:
            raise ConfigError(f"duplicate systematic name {name!r}", field="systematics")
        if effect == "norm":
            if not norm_variation > 0:
                raise ConfigError(
                    "norm_variation must be positive", field=f"systematics.{name}.norm_variation"
                )
            syst = Systematic(name, "norm", repr(float(norm_variation)))
            nuis = f"{name}_nuisance_param_0"
            bench = f"{nuis}_benchmark_0"
            self.nuisance_parameters[nuis] = NuisanceParameter(nuis, name, bench, None)
            self.benchmarks[bench] = Benchmark(
                bench, {p: 0.0 for p in self.parameters}, is_nuisance=True
            )
        elif effect == "scale":
            try:
                factors = [float(v) for v in scale_variations]
            except (TypeError, ValueError):
                raise ConfigError(
                    f"scale_variations must be numbers, got {scale_variations!r}",
                    field=f"systematics.{name}.scale_variations",
                ) from None
            if not factors or not all(math.isfinite(v) and v > 0 for v in factors):
                raise ConfigError(
                    f"scale_variations must be positive factors, got {scale_variations!r}",
                    field=f"systematics.{name}.scale_variations",
                )
            syst = Systematic(name, "scale", ",".join(str(v) for v in factors), scale)
            nuis = f"{name}_nuisance_param_0"
            benches = [f"{nuis}_benchmark_0", f"{nuis}_benchmark_1" if len(factors) > 1 else None]
            self.nuisance_parameters[nuis] = NuisanceParameter(nuis, name, *benches)
            for bench in filter(None, benches):
                self.benchmarks[bench] = Benchmark(
                    bench, {p: 0.0 for p in self.parameters}, is_nuisance=True
                )
        elif effect == "pdf":
            if not str(pdf_variation).strip():
                raise ConfigError(
                    "pdf_variation must name a PDF set", field=f"systematics.{name}.pdf_variation"
                )
            if pdf_members is not None and (
                isinstance(pdf_members, bool)
                or not isinstance(pdf_members, int | np.integer)
                or pdf_members < 1
            ):
                raise ConfigError(
                    f"pdf_members must be a positive integer (or null), got {pdf_members!r}",
                    field=f"systematics.{name}.pdf_members",
                )
            syst = Systematic(name, "pdf", str(pdf_variation).strip())
            if pdf_members is None:  # one two-sided parameter for the whole set
                params = {f"{name}_nuisance_param_0": 2}
            else:  # MadMiner's: one one-sided parameter per member, numbered from 1
                params = {f"{name}_nuisance_param_{k}": 1 for k in range(1, int(pdf_members) + 1)}
            for nuis, sides in params.items():
                benches = [f"{nuis}_benchmark_0", f"{nuis}_benchmark_1" if sides == 2 else None]
                self.nuisance_parameters[nuis] = NuisanceParameter(nuis, name, *benches)
                for bench in filter(None, benches):
                    self.benchmarks[bench] = Benchmark(
                        bench, {p: 0.0 for p in self.parameters}, is_nuisance=True
                    )
        else:
            raise ConfigError(
                f"unknown systematic effect {effect!r}; expected norm, scale or pdf",
                field=f"systematics.{name}.type",
            )
        self.systematics[name] = syst

    def norm_nuisance_factors(self) -> dict[str, float]:
        """{nuisance benchmark: factor} of the norm systematics (weight = reference weight × factor)."""
        out = {}
        for n in self.nuisance_parameters.values():
            syst = self.systematics.get(n.systematic)
            if syst is not None and syst.type == "norm" and n.benchmark_positive:
                out[n.benchmark_positive] = float(syst.value)
        return out

    # --- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict:
        names = self.parameter_names
        physics = self.physics_benchmarks()
        nuisance = sorted(
            (b for b in self.benchmarks.values() if b.is_nuisance), key=lambda b: b.name
        )
        fd = None
        if self.finite_difference_benchmarks:
            base = list(self.finite_difference_benchmarks)
            fd = {
                "base_benchmarks": base,
                "shifted_benchmarks": [
                    [self.finite_difference_benchmarks[b][p] for p in names] for b in base
                ],
                "epsilon": self.finite_difference_epsilon,
            }
        return {
            "parameters": [asdict(p) for p in self.parameters.values()],
            "benchmarks": [
                {
                    "name": b.name,
                    "values": list(b.vector(names)),
                    "is_nuisance": b.is_nuisance,
                    "is_reference": b.is_reference,
                }
                for b in [*physics, *nuisance]
            ],
            "components": self.components,
            "morphing_matrix": self.morphing_matrix,
            "finite_differences": fd,
            "systematics": [asdict(s) for s in self.systematics.values()],
            "nuisance_parameters": [asdict(n) for n in self.nuisance_parameters.values()],
        }

    @classmethod
    def from_dict(cls, data: dict) -> EFTSetup:
        self = cls()
        self.set_parameters(data["parameters"])
        names = self.parameter_names
        for b in data["benchmarks"]:
            values = b["values"] if isinstance(b["values"], dict) else dict(zip(names, b["values"]))
            self.benchmarks[b["name"]] = Benchmark(
                b["name"],
                {p: float(values.get(p, 0.0)) for p in names},
                bool(b["is_nuisance"]),
                bool(b["is_reference"]),
            )
        self.components = None if data.get("components") is None else np.asarray(data["components"])
        self.morphing_matrix = (
            None if data.get("morphing_matrix") is None else np.asarray(data["morphing_matrix"])
        )
        for s in data.get("systematics") or []:
            self.systematics[s["name"]] = Systematic(
                s["name"], s["type"], str(s["value"]), s.get("scale")
            )
        for n in data.get("nuisance_parameters") or []:
            self.nuisance_parameters[n["name"]] = NuisanceParameter(
                n["name"], n["systematic"], n["benchmark_positive"], n["benchmark_negative"]
            )
        fd = data.get("finite_differences")
        if fd:
            self.finite_difference_epsilon = fd["epsilon"]
            self.finite_difference_benchmarks = {
                b: dict(zip(names, row))
                for b, row in zip(fd["base_benchmarks"], fd["shifted_benchmarks"])
            }
        return self

    def save(self, filename: str | Path, *, provenance: dict | None = None) -> None:
        """Write the setup file in MadMiner's HDF5 layout (atomically)."""
        from eftflow import __version__
        from eftflow.store.setup_h5 import write_setup

        attrs = {"eftflow_version": __version__, "format": "madminer-setup", "format_version": 1}
        if provenance:
            attrs["provenance"] = provenance
        write_setup(filename, self.to_dict(), attrs=attrs)

    def load(self, filename: str | Path) -> None:
        """Replace this setup by the one in ``filename`` (eftflow's or MadMiner's)."""
        from eftflow.store.setup_h5 import read_setup

        data = read_setup(filename)
        try:
            other = EFTSetup.from_dict(data)
        except EftflowError as err:  # a value the setup refuses: name the file and dataset
            raise InputError(err.message, file=filename, field=_h5_field(err.field)) from None
        self.__dict__.update(other.__dict__)

    @classmethod
    def from_file(cls, filename: str | Path) -> EFTSetup:
        self = cls()
        self.load(filename)
        return self

    @classmethod
    def from_config(cls, config: dict, *, file: str | None = None) -> EFTSetup:
        """Build the setup from a validated configuration (see ``config/config.yaml``).

        Errors name ``file`` and the key in the config's form (``parameters[0].param_card_transform``).
        """
        self = cls()
        try:
            self._build_from_config(config)
        except EftflowError as err:
            raise _config_form(err, config, file) from None
        return self

    def _build_from_config(self, config: dict) -> None:
        self.set_parameters(config["parameters"])
        for b in config.get("benchmarks", []):
            self.add_benchmark(b["values"], b["name"], verbose=False)
        m = config.get("morphing", {})
        if m.get("enabled", True):
            self.set_morphing(
                max_overall_power=m.get("max_overall_power", 2),
                include_existing_benchmarks=m.get("include_existing_benchmarks", True),
                n_trials=m.get("n_trials", 100),
                n_test_thetas=m.get("n_test_thetas", 1000),
                n_benchmarks=m.get("n_benchmarks"),
                seed=int(config.get("seed", 0)),
            )
        eps = (config.get("finite_differences") or {}).get("epsilon")
        if eps is not None:
            self.finite_differences(eps)
        for s in config.get("systematics", []):
            self.add_systematics(
                s["type"],
                s["name"],
                norm_variation=s.get("norm_variation", 1.1),
                scale=s.get("scale", "mu"),
                scale_variations=tuple(s.get("scale_variations", (0.5, 1.0, 2.0))),
                pdf_variation=s.get("pdf_variation", "CT10"),
                pdf_members=s.get("pdf_members"),
            )

    def __repr__(self) -> str:
        return (
            f"EFTSetup(parameters={self.parameter_names}, benchmarks={list(self.benchmarks)}, "
            f"components={None if self.components is None else self.components.shape[0]})"
        )


def _h5_field(field: str | None) -> str | None:
    """``parameters.<name>.<key>`` → ``parameters/<dataset> (<name>)`` for setup-file errors."""
    datasets = {
        "param_card_transform": "transforms",
        "parameter_range": "val_ranges",
        "morphing_max_power": "max_power",
        "type": "types",
        "scale": "scales",
        "value": "values",
    }
    parts = (field or "").split(".")
    if len(parts) >= 3 and parts[0] in ("parameters", "systematics", "benchmarks"):
        key = datasets.get(parts[-1], parts[-1])
        return f"{parts[0]}/{key} ({'.'.join(parts[1:-1])})"
    return field


def _config_form(err: ConfigError, config: dict, file: str | None) -> ConfigError:
    """``err`` with ``parameters.<name>``/``benchmarks.<name>`` fields as config list indices."""
    field = err.field or ""
    for section in ("parameters", "benchmarks"):
        for i, item in enumerate(config.get(section) or []):
            name = item.get("name") if isinstance(item, dict) else None
            prefix = f"{section}.{name}"
            if name is not None and (field == prefix or field.startswith(prefix + ".")):
                field = f"{section}[{i}]" + field[len(prefix) :]
                break
        else:
            continue
        break
    return type(err)(err.message, file=err.file or file, field=field or None)


#: MadMiner's name for the same object, so notebooks translate line by line.
MadMiner = EFTSetup
