/**
 * `floe completion bash|zsh`: a completion script made from the command tables, so that it
 * knows every subcommand and flag `floe --help` does and cannot drift from them.
 */
import type { Command } from "./flags.js";
import type { Out } from "./validate.js";

/** Commands whose first argument is a run: completed with the ids `floe runs` lists (its rows are tab-separated in a pipe). */
const RUN_ARG = new Set(["logs", "cancel", "pause", "resume", "rerun"]);

/** Flags whose value is a file or a folder: completed as paths. */
const PATH_ARGS = new Set(["FILE", "DIR"]);

function flagWords(c: Command): string[] {
  return [...c.flags.map((f) => (f.type === "string" ? `--${f.name}=` : `--${f.name}`)), "--help"];
}

export function bashCompletion(commands: readonly Command[]): string {
  const cases = commands.map((c) => {
    const paths = c.flags.filter((f) => f.arg !== undefined && PATH_ARGS.has(f.arg)).map((f) => `--${f.name}=*`);
    return [
      `    ${c.name})`,
      `      opts="${flagWords(c).join(" ")}"`,
      ...(paths.length > 0 ? [`      case "$cur" in ${paths.join("|")}) COMPREPLY=( $(compgen -f -- "\${cur#*=}") ); return ;; esac`] : []),
      `      files=${RUN_ARG.has(c.name) ? 2 : c.positionals ? 1 : 0} ;;`,
    ].join("\n");
  });
  return `# bash completion for floe: source <(floe completion bash)
_floe() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" opts="" files=0
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${commands.map((c) => c.name).join(" ")} help --help --version" -- "$cur") )
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases.join("\n")}
    help) COMPREPLY=( $(compgen -W "${commands.map((c) => c.name).join(" ")}" -- "$cur") ); return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
    [[ "\${COMPREPLY[0]}" == *= ]] && compopt -o nospace 2>/dev/null
  elif [ "$files" -eq 1 ]; then
    COMPREPLY=( $(compgen -f -- "$cur") )
  elif [ "$files" -eq 2 ] && [ "$COMP_CWORD" -eq 2 ]; then
    # The runs of the host FLOE_SERVER names, newest first; nothing when it can not be reached.
    COMPREPLY=( $(compgen -W "$(floe runs --limit=50 2>/dev/null | cut -f2)" -- "$cur") )
  fi
}
complete -F _floe floe
`;
}

/** Text inside a zsh `_arguments` spec: its brackets, colons and quotes escaped. */
function zq(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/'/g, "'\\''").replace(/([[\]:])/g, "\\$1");
}

export function zshCompletion(commands: readonly Command[]): string {
  const list = commands.map((c) => `    '${c.name}:${zq(c.summary.split(/[.:;]/)[0] ?? c.name)}'`);
  const cases = commands.map((c) => {
    const specs = c.flags.map((f) => {
      const help = zq(f.help.split(/[;(]/)[0]?.trim() ?? f.name);
      if (f.type === "boolean") return `'--${f.name}[${help}]'`;
      const action = f.arg !== undefined && PATH_ARGS.has(f.arg) ? (f.arg === "DIR" ? "_directories" : "_files") : " ";
      return `'${f.multiple === true ? "*" : ""}--${f.name}=[${help}]:${f.arg ?? "value"}:${action}'`;
    });
    const positional = RUN_ARG.has(c.name) ? "'1:run:_floe_runs'" : c.positionals ? "'*:argument:_files'" : "";
    return `    ${c.name}) _arguments ${[...specs, "'(-h --help)'{-h,--help}'[print help]'", positional].filter((s) => s !== "").join(" ")} ;;`;
  });
  return `#compdef floe
# zsh completion for floe: floe completion zsh > "\${fpath[1]}/_floe" (then compinit)
_floe_runs() {
  local -a runs
  runs=(\${(f)"$(floe runs --limit=50 2>/dev/null | cut -f2)"})
  compadd -a runs
}
_floe() {
  local -a commands
  commands=(
${list.join("\n")}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'floe command' commands
    return
  fi
  words=("\${words[@]:1}")
  (( CURRENT-- ))
  case "\${words[1]}" in
${cases.join("\n")}
  esac
}
if [ "$funcstack[1]" = "_floe" ]; then _floe "$@"; else compdef _floe floe; fi
`;
}

export function completionCommand(positionals: readonly string[], commands: readonly Command[], io: Out): number {
  const [shell, ...rest] = positionals;
  if (rest.length > 0 || (shell !== "bash" && shell !== "zsh")) {
    io.err(`floe completion: ${shell === undefined ? "which shell?" : `no completion for "${shell}"`} (bash or zsh)`);
    io.err("usage: floe completion bash|zsh");
    return 2;
  }
  io.out((shell === "bash" ? bashCompletion(commands) : zshCompletion(commands)).trimEnd());
  return 0;
}
