"""`dockfix completion bash|zsh|fish`: a shell completion script, generated from the parsers
themselves (commands, and each command's own options), so it never lists an option that is gone."""

from __future__ import annotations

import argparse
import sys


def _options(p: argparse.ArgumentParser) -> list[tuple[str, str]]:
    out = []
    for a in p._actions:
        if a.help == argparse.SUPPRESS:
            continue
        for s in a.option_strings:
            out.append((s, (a.help or "").replace("%(default)s", str(a.default))))
    return out


def spec() -> tuple[dict[str, str], dict[str, list[tuple[str, str]]], list[tuple[str, str]]]:
    """({command: help}, {command: [(option, help)]}, top-level options)."""
    from dockfix.cli import COMMANDS, build_parser
    from dockfix.cli import toplevel

    helps = {name: h for name, (_m, _b, h) in COMMANDS.items()}
    per: dict[str, list[tuple[str, str]]] = {}
    for name in COMMANDS:
        top = build_parser(name)
        sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
        per[name] = _options(sub.choices[name])
    top_opts = _options(toplevel.build_parser()) + [("--version", ""), ("-V", "")]
    return helps, per, top_opts


def bash() -> str:
    helps, per, top = spec()
    cases = "\n".join(f"    {name}) opts=\"{' '.join(o for o, _ in opts)}\" ;;" for name, opts in per.items())
    return f"""# dockfix completion for bash: eval "$(dockfix completion bash)"
_dockfix() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" cmd="" w opts
  for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
    case "$w" in {'|'.join(helps)}) cmd="$w"; break ;; esac
  done
  case "$cmd" in
{cases}
    *) opts="{' '.join(helps)} {' '.join(o for o, _ in top)}" ;;
  esac
  if [[ "$cmd" == completion ]]; then opts="bash zsh fish"; fi
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
}}
complete -o default -F _dockfix dockfix
"""


def zsh() -> str:
    return ("# dockfix completion for zsh: eval \"$(dockfix completion zsh)\"\n"
            "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n" + bash())


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish() -> str:
    helps, per, top = spec()
    lines = ["# dockfix completion for fish: dockfix completion fish | source", "complete -c dockfix -f"]
    for name, h in helps.items():
        lines.append(f"complete -c dockfix -n __fish_use_subcommand -a {name} -d {_fish_quote(h)}")
    for o, h in top:
        flag = f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}"
        lines.append(f"complete -c dockfix -n __fish_use_subcommand {flag} -d {_fish_quote(h)}")
    for name, opts in per.items():
        for o, h in opts:
            flag = f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}"
            lines.append(f"complete -c dockfix -n '__fish_seen_subcommand_from {name}' {flag} -d {_fish_quote(h)}")
    lines.append("complete -c dockfix -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'")
    return "\n".join(lines) + "\n"


def cmd_completion(args: argparse.Namespace) -> int:
    sys.stdout.write({"bash": bash, "zsh": zsh, "fish": fish}[args.shell]())
    return 0


def build_completion_parser(sub) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)",
                       description="Print a completion script. bash: eval \"$(dockfix completion bash)\" in "
                       "~/.bashrc; zsh: eval \"$(dockfix completion zsh)\" in ~/.zshrc; fish: "
                       "dockfix completion fish > ~/.config/fish/completions/dockfix.fish")
    p.add_argument("shell", choices=["bash", "zsh", "fish"])
    p.set_defaults(func=cmd_completion)
