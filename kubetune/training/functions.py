"""Jobs that run a Python function: `TrainingClient.create_job(train_func=..., parameters=...)`.

The function travels as its source text, as Kubeflow V1 ships it: the program is the function's
dedented source followed by one call, `train_func(<parameters as a Python literal>)` (or
`train_func()` without parameters), and every worker process runs that program. So a function
that needs anything of the interpreter that defined it cannot travel, and is refused here with
the reason before anything is created: a lambda (no name to call), a closure (its free
variables stay behind), a function whose source cannot be read, a method or a decorated
function, one that reads global names of this interpreter (imports belong inside the function),
and parameters that are not plain Python literals.
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

from kubetune import __version__
from kubetune.contract.problems import Problems
from kubetune.contract.spec import FunctionSpec, JobSpec, KubernetesExtras
from kubetune.params import validation
from kubetune.params.job import job_problems

ENTRYPOINT_TORCH = "torchrun"
ENTRYPOINT_PYTHON = "python -u"
DEFAULT_PIP_INDEX_URL = "https://pypi.org/simple"


def function_problems(train_func: Any, parameters: Any) -> list[str]:
    """Why `train_func(parameters)` cannot be shipped as source; [] when it can."""
    if not callable(train_func):
        return [f"train_func={train_func!r}: must be a function"]
    name = getattr(train_func, "__name__", type(train_func).__name__)
    where = f"train_func={name}"
    if inspect.ismethod(train_func):
        return [f"{where}: a bound method cannot be shipped; define a plain function with def"]
    if not inspect.isfunction(train_func):
        return [
            f"{where}: a {type(train_func).__name__} cannot be shipped; pass a function defined with def"
        ]
    if name == "<lambda>":
        return [f"{where}: a lambda has no name to call in the shipped source; define it with def"]
    if inspect.iscoroutinefunction(train_func) or inspect.isgeneratorfunction(train_func):
        return [f"{where}: must be a plain function, not a coroutine or generator function"]
    problems = []
    free = train_func.__code__.co_freevars
    if free:
        problems.append(
            f"{where}: it is a closure over {', '.join(free)} of the function that defined it; "
            "only its source travels, so pass those values in `parameters`"
        )
    try:
        source = textwrap.dedent(inspect.getsource(train_func))
    except (OSError, TypeError) as e:
        problems.append(
            f"{where}: its source cannot be read ({e}); define it in a file or a notebook cell"
        )
        source = None
    if source is not None:
        problems.extend(_source_problems(where, name, source))
    loaded, stored = _global_names(train_func.__code__)
    foreign = sorted(loaded - stored - set(dir(builtins)) - {name})
    if foreign:
        problems.append(
            f"{where}: it reads the global name(s) {', '.join(foreign)}, which do not travel with its "
            "source; import or define them inside the function, or pass values in `parameters`"
        )
    problems.extend(_parameter_problems(train_func, where, parameters))
    return problems


def _source_problems(where: str, name: str, source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return [f"{where}: its source does not parse on its own ({e.msg})"]
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        return [f"{where}: its source is not one function definition"]
    definition = tree.body[0]
    if definition.decorator_list:
        return [f"{where}: a decorated function cannot be shipped (the decorator does not travel)"]
    if definition.name != name:
        return [f"{where}: its source defines {definition.name!r}, not {name!r}"]
    return []


def _global_names(code: types.CodeType) -> tuple[set[str], set[str]]:
    """The global names that `code` and the functions and comprehensions inside it load, and
    those they assign (`global x; x = ...`)."""
    loaded, stored = set(), set()
    for instruction in dis.get_instructions(code):
        if instruction.opname == "LOAD_GLOBAL":
            loaded.add(instruction.argval)
        elif instruction.opname == "STORE_GLOBAL":
            stored.add(instruction.argval)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            inner_loaded, inner_stored = _global_names(constant)
            loaded |= inner_loaded
            stored |= inner_stored
    return loaded, stored


def _parameter_problems(train_func: Callable[..., Any], where: str, parameters: Any) -> list[str]:
    problems = []
    if parameters is not None:
        if not isinstance(parameters, dict):
            problems.append(f"parameters={parameters!r}: must be a dict or None")
        elif not _is_literal(parameters):
            problems.append(
                f"parameters={parameters!r}: must hold only Python literals (numbers, strings, "
                "booleans, None, and lists, tuples, sets and dicts of them): they travel as source text"
            )
    args = () if parameters is None else (parameters,)
    try:
        inspect.signature(train_func).bind(*args)
    except TypeError:
        call = "train_func(parameters)" if args else "train_func()"
        problems.append(
            f"{where}{inspect.signature(train_func)}: is called as {call}, which it does not accept"
        )
    return problems


def _is_literal(value: Any) -> bool:
    try:
        return bool(ast.literal_eval(repr(value)) == value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def program(train_func: Callable[..., Any], parameters: dict[str, Any] | None) -> str:
    """The Python program every worker process runs: the function's source and one call."""
    return program_text(function_source(train_func), train_func.__name__, parameters)


def function_source(train_func: Callable[..., Any]) -> str:
    """The function's source text, dedented (what travels)."""
    return textwrap.dedent(inspect.getsource(train_func))


def program_text(source: str, name: str, parameters: dict[str, Any] | None) -> str:
    """The program of function `name` defined by `source`: the source, then one call with
    `parameters` as a Python literal (no argument when None)."""
    call = f"{name}()" if parameters is None else f"{name}({parameters!r})"
    return f"{source.rstrip(chr(10))}\n\n\n{call}\n"


def package_problems(packages: Any, pip_index_url: Any) -> list[str]:
    """Checks `packages_to_install` (pip requirement strings) and `pip_index_url`."""
    from packaging.requirements import InvalidRequirement, Requirement

    problems = []
    if packages is not None:
        if not isinstance(packages, list | tuple) or not all(isinstance(p, str) for p in packages):
            problems.append(
                f"packages_to_install={packages!r}: must be a list of pip requirements such as ['boto3', 'evaluate>=0.4']"
            )
        else:
            for package in packages:
                try:
                    Requirement(package)
                except InvalidRequirement as e:
                    problems.append(
                        f"packages_to_install: {package!r} is not a pip requirement ({e})"
                    )
    if not isinstance(pip_index_url, str) or not pip_index_url.startswith(
        ("http://", "https://", "file://")
    ):
        problems.append(
            f"pip_index_url={pip_index_url!r}: must be an http://, https:// or file:// URL of a package index"
        )
    return problems


def function_job_spec(
    *,
    name: Any,
    namespace: str,
    train_func: Any,
    parameters: Any,
    base_image: Any,
    num_workers: Any,
    num_procs_per_worker: Any,
    resources_per_worker: Any,
    packages_to_install: Any,
    pip_index_url: Any,
    env_vars: Any,
    kubernetes: KubernetesExtras | None = None,
    labels: Any = None,
    annotations: Any = None,
    queue_name: Any = None,
    max_restarts: Any = 3,
    extra_problems: list[str] | None = None,
) -> JobSpec:
    """The JobSpec of a job that runs `train_func` (or, without one, `base_image`'s own command).

    `num_procs_per_worker=None` runs the program with `python -u` when there is one worker (as
    Kubeflow does), else with torchrun.

    Raises:
        InvalidJob: (a ValueError) listing every problem, `extra_problems` (found by the
            caller) included, before anything is created.
    """
    found = Problems(f"create_job(name={name!r})")
    found.extend(extra_problems or [])
    procs = 1 if num_procs_per_worker is None else num_procs_per_worker
    found.extend(
        job_problems(
            name=name,
            namespace=namespace,
            num_workers=num_workers,
            num_procs_per_worker=procs,
            resources_per_worker=resources_per_worker,
            env=env_vars,
            labels=labels,
            annotations=annotations,
            max_restarts=max_restarts,
        )
    )
    if train_func is not None:
        found.extend(function_problems(train_func, parameters))
    elif parameters is not None:
        found.add("parameters: given without train_func; they are the arguments of train_func")
    found.add(validation.optional_str("base_image", base_image))
    if packages_to_install and train_func is None:
        found.add("packages_to_install: given without train_func; they are installed for it")
    found.extend(package_problems(packages_to_install, pip_index_url))
    if queue_name is not None:
        found.add(validation.dns1123_label("queue_name", queue_name))
    found.raise_if_any()

    torchrun = num_workers > 1 or num_procs_per_worker is not None
    function = FunctionSpec(
        name=train_func.__name__ if train_func is not None else None,
        program=program(train_func, parameters) if train_func is not None else None,
        entrypoint=ENTRYPOINT_TORCH if torchrun else ENTRYPOINT_PYTHON,
        packages=list(packages_to_install or []),
        pip_index_url=pip_index_url,
        base_image=base_image,
    )
    return JobSpec(
        name=name,
        namespace=namespace,
        num_workers=num_workers,
        num_procs_per_worker=procs,
        resources_per_worker=dict(resources_per_worker or {}),
        env=dict(env_vars or {}),
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
        queue_name=queue_name,
        max_restarts=max_restarts,
        function=function,
        kubernetes=kubernetes or KubernetesExtras(),
        kubetune_version=__version__,
    )
