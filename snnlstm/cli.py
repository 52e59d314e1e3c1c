"""The ``snnlstm`` command: a LightningCLI over every snnlstm model and DataModule.

``snnlstm fit|validate|test|predict --config configs/<experiment>.yaml`` takes models and DataModules by
``class_path`` (ours or any importable LightningModule/LightningDataModule); the DataModule's
``input_size``, ``num_classes`` and ``seq_len`` (classification) or ``src_vocab_size`` and
``tgt_vocab_size`` (translation) are linked into the model's arguments of the same name.

Checkpoints are read with ``weights_only=True`` (:mod:`snnlstm.checkpoint`), ``--ckpt_path`` included: the
subcommands' ``--weights_only`` option (Lightning's ``Trainer.fit/validate/test/predict`` argument) defaults
to ``true``. A bad option value, an unknown option or a constructor's ``ValueError`` is reported in one short
message (the option, the value, what is allowed) with exit status 2; ``JSONARGPARSE_DEBUG=true`` shows the
full jsonargparse error and traceback instead.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from .checkpoint import CheckpointError, is_checkpoint_file_path, load_checkpoint

#: data facts linked from the DataModule into the model when both have them
LINKED_FACTS: tuple[str, ...] = ("input_size", "num_classes", "seq_len", "src_vocab_size", "tgt_vocab_size")

#: the config group of each kind of object the CLI instantiates (for naming the option in errors)
CONFIG_GROUPS: tuple[tuple[str, type], ...] = (("model", LightningModule), ("data", LightningDataModule), ("trainer", Trainer))

#: what constructors raise for a bad argument value (other errors keep their traceback)
ARGUMENT_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, MisconfigurationException)

#: lines of jsonargparse's nested error messages that say nothing about the option or its value
_NOISE = ("Does not validate against any of the Union subtypes", "Subtypes:", "Errors:", "Given value type:")
_KEY = re.compile(r'^Parser key "([^"]+)":\s*(.*)$')
_CLASS = re.compile(r"^Problem with given class_path '([^']+)':\s*(.*)$")
_GIVEN = re.compile(r"^Given value:\s*(.*)$")
_GOT = re.compile(r"^(.*?)\.? Got value: (.*)$")
_NOT_ACCEPTED = re.compile(r"^Option '([^']+)' is not accepted$")
_BULLET = re.compile(r"^(\s*(?:- )?)(.*?)\s*$")


class SNNLSTMArgumentParser(LightningArgumentParser):
    """A LightningArgumentParser whose errors are one short message instead of the usage and a nested report.

    ``error`` is argparse's hook for reporting bad command lines; jsonargparse calls it with its nested
    message. This one prints ``PROG: error: --option value: what is allowed`` and a pointer to ``--help``,
    then exits with status 2. With ``exit_on_error=False`` or ``JSONARGPARSE_DEBUG`` set it behaves as
    jsonargparse's (raise, or full report).
    """

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        """Print ``message`` condensed to the failing options and exit with status 2."""
        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"{prog}: error: {condense_error(message)}\n")
        sys.stderr.write(f"See `{prog} --help` for the accepted options and values.\n")
        self.exit(2)


class SNNLSTMCLI(LightningCLI):
    """LightningCLI with the DataModule -> model links of snnlstm.

    With ``--ckpt_path`` the model arguments saved in the checkpoint replace those of the config files
    (so a checkpoint is evaluated as the model it was trained as), and options given on the command
    line itself win over both: ``snnlstm test --config C --ckpt_path K --model.init_args.eval_mode
    hybrid`` runs the hybrid test. Lightning 2.6 alone lets the checkpoint win over the command line
    too and silently ignores such options (cf. Lightning PR #21455).
    """

    def add_arguments_to_parser(self, parser: Any) -> None:
        for fact in LINKED_FACTS:
            parser.link_arguments(f"data.{fact}", f"model.init_args.{fact}", apply_on="instantiate")

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        """Lightning's subcommand parser, with ``--weights_only`` (the Trainer method's argument) defaulting to true."""
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if "weights_only" in self._subcommand_method_arguments[subcommand]:
            parser.set_defaults(weights_only=True)
        return parser

    def parse_arguments(self, parser: Any, args: Any) -> None:
        self._raw_args = args
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """Apply the hyper-parameters of ``--ckpt_path``'s checkpoint (read once, weights only) to the config."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return None
        ckpt_path = self.config[subcommand].get("ckpt_path")
        if not is_checkpoint_file_path(ckpt_path):
            return None  # none, or one that Lightning resolves itself ("last", "best", "hpc", registry, URL)
        try:
            checkpoint = load_checkpoint(ckpt_path, what="--ckpt_path checkpoint")
        except CheckpointError as err:
            self._error(str(err), err)
        hparams = dict(checkpoint.get("hyper_parameters", {})) if isinstance(checkpoint, dict) else {}
        hparams.pop("_instantiator", None)
        raw = getattr(self, "_raw_args", None)
        raw = sys.argv[1:] if raw is None else raw
        if "_class_path" not in hparams or not isinstance(raw, (list, tuple)):
            return self._apply_lightning_ckpt_hparams(subcommand, hparams)
        class_path = hparams.pop("_class_path")
        hparams = _migrated_hparams(class_path, hparams)
        init_args = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in LINKED_FACTS}
        from_ckpt = self.parser.parse_object(
            {subcommand: {"model": {"class_path": class_path, "init_args": init_args}}}, self.config
        )
        # the command line's own options (not its config files) again, on top of the checkpoint's arguments
        self.config = self.parser.parse_args(_without_config_files(list(raw)), namespace=from_ckpt)
        data = self.config[subcommand].get("data")
        init_args = data.get("init_args") if data is not None else None
        if init_args is not None and "vocab_from" in init_args and init_args["vocab_from"] is None:
            init_args["vocab_from"] = str(ckpt_path)  # translation: the checkpoint's vocabulary, so its sizes link
        return None

    def _apply_lightning_ckpt_hparams(self, subcommand: str, hparams: dict[str, Any]) -> None:
        """Lightning 2.6's own handling (checkpoints of other models, or ``args`` given as a dict/Namespace)."""
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)
        except SystemExit:
            sys.stderr.write("Parsing of ckpt_path hyperparameters failed!\n")
            raise

    def instantiate_classes(self) -> None:
        """Lightning's, with a constructor's :data:`ARGUMENT_ERRORS` reported as a bad option value."""
        try:
            super().instantiate_classes()
        except Exception as err:
            cause = _argument_error(err)
            if cause is None:
                raise
            self._error(self._describe_argument_error(cause), cause)

    def _describe_argument_error(self, err: BaseException) -> str:
        """``--group.init_args.name value: message`` for the argument that ``err``'s message names."""
        message = str(err).strip().strip("'\"")  # KeyError-style quotes
        component = _failing_component(err)
        if component is None:
            return message
        group, cls = component
        subcommand = self.config.get("subcommand")
        args = (self.config[subcommand] if subcommand else self.config).get(group)
        prefix = f"--{group}."
        if group != "trainer":
            args, prefix = (args.get("init_args") if args is not None else None), f"--{group}.init_args."
        name = _named_argument(message, list(args.keys()) if args is not None else [])
        if name is None:
            return f"--{group} ({cls.__module__}.{cls.__qualname__}): {message}"
        return f"{prefix}{name} {_format_value(args[name])}: {message}"

    def _error(self, message: str, ex: BaseException | None = None) -> NoReturn:
        """Report ``message`` like a parse error of the running subcommand (status 2)."""
        subcommand = self.config.get("subcommand") if getattr(self, "config", None) is not None else None
        parser = getattr(self, "_subcommand_parsers", {}).get(subcommand, self.parser)
        parser.error(message, ex)


def _import_class(class_path: str) -> Any:
    """The object ``class_path`` names (``package.module.Name``), or None when it cannot be imported."""
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _migrated_hparams(class_path: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` through the model class's ``migrate_hparams`` (older checkpoints' argument layout to
    the current one), when the class has one."""
    cls = _import_class(class_path)
    if cls is None:
        return hparams  # jsonargparse reports the class path itself
    migrate = getattr(cls, "migrate_hparams", None)
    return migrate(hparams) if isinstance(cls, type) and issubclass(cls, LightningModule) and callable(migrate) else hparams


def condense_error(message: str) -> str:
    """jsonargparse's nested error ``message`` reduced to one line per failing option.

    ``Parser key "model": ... Problem with given class_path 'C': Parser key "mode": Expected a
    typing.Literal['ann', 'snn', 'hybrid']. Got value: banana`` becomes ``--model.init_args.mode banana:
    expected one of 'ann', 'snn', 'hybrid'``. Only the most deeply nested errors are kept (the outer ones
    are the alternatives that did not apply, such as ``null`` for the whole model); a message without
    that structure is returned as it is.
    """
    leaves, values = _error_leaves(message)
    if not leaves:
        return message.strip()
    depth = max(len(path) for path, _ in leaves)
    grouped: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for path, text in leaves:
        if len(path) == depth and _readable(text) not in grouped.setdefault(path, []):
            grouped[path].append(_readable(text))
    return "\n".join(_option_line(path, _alternatives(texts), values) for path, texts in grouped.items())


def _alternatives(texts: list[str]) -> str:
    """``expected int or null`` from ``["expected int", "expected null"]``."""
    if len(texts) > 1 and all(text.startswith("expected ") for text in texts):
        return "expected " + " or ".join(text.removeprefix("expected ") for text in texts)
    return " or ".join(texts)


def _error_leaves(message: str) -> tuple[list[tuple[tuple[tuple[str, str], ...], str]], dict[Any, str]]:
    """The error texts of ``message`` with the key path of each, and the given value at each path."""
    leaves: list[tuple[tuple[tuple[str, str], ...], str]] = []
    values: dict[tuple[tuple[str, str], ...], str] = {}
    stack: list[tuple[int, tuple[str, str]]] = []  # (indent, ("key", name) or ("class", class_path))
    for raw in message.splitlines():
        bullet, text = _BULLET.match(raw).groups()  # type: ignore[union-attr]
        if not text:
            continue
        indent = len(bullet)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = tuple(segment for _, segment in stack)
        if key := _KEY.match(text):
            stack.append((indent, ("key", key[1])))
            if key[2]:
                leaves.append(((*path, ("key", key[1])), key[2]))
        elif cls := _CLASS.match(text):
            stack.append((indent, ("class", cls[1])))
        elif given := _GIVEN.match(text):
            if not given[1].startswith(("NestedArg(", "Namespace(", "{")):
                values.setdefault(path, given[1])
        elif not text.startswith(_NOISE):
            if got := _GOT.match(text):
                text = got[1]
                values.setdefault(path, got[2])
            if not_accepted := _NOT_ACCEPTED.match(text):
                cls_name = path[-1][1] if path and path[-1][0] == "class" else "this class"
                path, text = (*path, ("key", not_accepted[1])), f"no such option of {cls_name}{_moved_hint(cls_name, not_accepted[1])}"
            leaves.append((path, text))
    return leaves, values


def _moved_hint(class_path: str, name: str) -> str:
    """``"; it is a layer setting: ...layer.NAME"`` when ``class_path`` takes its layer's settings as a
    ``layer`` block (:mod:`snnlstm.nn.settings`) and ``name`` is one of them."""
    import inspect

    try:
        block = inspect.signature(_import_class(class_path)).parameters["layer"].default  # type: ignore[arg-type]
    except (ValueError, TypeError, KeyError):
        return ""
    if name in getattr(block, "field_names", tuple)():
        return f"; it is a layer setting: --model.init_args.layer.{name}"
    return ""


def _option_line(path: tuple[tuple[str, str], ...], text: str, values: dict[Any, str]) -> str:
    """``--a.init_args.b value: text`` for the key path ``path``."""
    if not path:
        return text
    keys: list[str] = []
    for kind, name in path:
        keys += ["init_args"] if kind == "class" else [name]
    value = values.get(path)
    if path[-1][0] == "class":  # the class itself failed (e.g. it does not exist): the option is the group
        keys.pop()
        value = path[-1][1]
    option = "--" + ".".join(keys)
    return f"{option} {value}: {text}" if value is not None else f"{option}: {text}"


def _readable(text: str) -> str:
    """jsonargparse's type names in plain words: ``Expected a typing.Literal['a', 'b']`` -> ``expected one of 'a', 'b'``."""
    text = re.sub(r"^Expected a ", "expected ", text)
    text = re.sub(r"typing\.Literal\[(.*)\]", r"one of \1", text)
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)
    return text.replace("NoneType", "null")


def _argument_error(err: BaseException) -> BaseException | None:
    """The error a constructor raised under jsonargparse's wrappers of ``err``, if it is about an argument value."""
    current: BaseException | None = err
    while current is not None and _raised_by_jsonargparse(current):
        current = current.__cause__
    return current if isinstance(current, ARGUMENT_ERRORS) else None


def _raised_by_jsonargparse(err: BaseException) -> bool:
    frames = list(traceback.walk_tb(err.__traceback__))
    return bool(frames) and frames[-1][0].f_globals.get("__name__", "").startswith("jsonargparse")


def _failing_component(err: BaseException) -> tuple[str, type] | None:
    """The config group and class of the outermost model/DataModule/Trainer in ``err``'s traceback."""
    for frame, _ in traceback.walk_tb(err.__traceback__):
        obj = frame.f_locals.get("self")
        for group, kind in CONFIG_GROUPS:
            if isinstance(obj, kind):
                return group, type(obj)
    return None


def _named_argument(message: str, names: Sequence[str]) -> str | None:
    """The argument of ``names`` that ``message`` mentions first (as a whole word), if any.

    A nested argument (``layer.timesteps``) is matched by its last part; at the same position a shorter
    (outer) name wins.
    """
    found = []
    for name in names:
        leaf = name.rpartition(".")[2]
        if m := re.search(rf"(?<![\w.-]){re.escape(leaf)}(?![\w-])", message):
            found.append((m.start(), name.count("."), name))
    return min(found)[2] if found else None


def _format_value(value: Any) -> str:
    """A value as it would be written on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return str(value)


def _without_config_files(args: list[str]) -> list[str]:
    """``args`` without ``--config FILE`` / ``--config=FILE`` / ``-c FILE`` (the options stay)."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--config", "-c"):
            skip = True
        elif not arg.startswith("--config="):
            kept.append(arg)
    return kept


def cli_main(args: list[str] | None = None, run: bool = True) -> SNNLSTMCLI:
    """Build (and by default run) the CLI; ``args`` replaces ``sys.argv[1:]``.

    Raises:
        SystemExit: status 2 after a one-message report of a bad option or checkpoint.
    """
    os.environ.setdefault("WANDB_SILENT", "true")
    return SNNLSTMCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        run=run,
        parser_class=SNNLSTMArgumentParser,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )


def main() -> None:
    """Console-script entry point."""
    cli_main()


if __name__ == "__main__":
    main()
