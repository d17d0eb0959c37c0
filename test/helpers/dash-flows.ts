/** The flows the dashboard tests drive: a form, a merge, a data node, coloured output, a long log, a slow task. */

/** `gate` is a directory: the "slow" flow's first task waits until the file gate/go exists. */
export function dashConfig(gate: string): string {
  return `
flows:
  - id: hello
    name: Hello form
    triggers:
      - name: form
        type: data
        opts:
          form:
            title: Say hello
            fields:
              - {id: name, prompt: Name, type: string}
              - {id: count, prompt: Count, type: int, value: "2"}
              - {id: loud, prompt: Loud, type: bool, value: "false", required: false}
      - {name: push, type: git-push, opts: {secret: very-secret-value, refs: "refs/heads/*"}}
    tasks:
      - {name: say, type: exec, listen: trigger.good, opts: {shell: 'for i in $(seq $count); do echo "hello $name"; done'}}
      - {name: check, type: exec, listen: trigger.good, opts: {shell: 'printf "\\\\033[32mall green\\\\033[0m\\\\n"'}}
      - {name: both, class: merge, type: all, wait: [task.say.good, task.check.good]}
      - name: approve
        type: data
        listen: merge.both.good
        opts: {form: {title: Ship it?, fields: [{id: ok, prompt: Ship it, type: bool}, {id: note, prompt: Note, type: string, required: false}]}}
      - {name: notify, type: exec, listen: task.approve.bad, opts: {cmd: "echo rejected"}}
      - {name: fin, type: end, listen: task.approve.good}
  - id: slow
    name: Slow one
    triggers: [{name: go, type: data}]
    tasks:
      - name: gated
        type: exec
        listen: trigger.good
        opts: {shell: 'echo "waiting for the gate"; while [ ! -f "${gate}/go" ]; do sleep 0.05; done; echo released; printf "\\\\033[1;31mred alert\\\\033[0m done\\\\n"'}
      - {name: many, type: exec, listen: trigger.good, opts: {shell: 'seq -f "line %g" 1 2500'}}
      - {name: nap, type: exec, listen: task.gated.good, opts: {cmd: "sleep 60"}}
  - id: locked
    name: Holds the database
    resource-tags: [db]
    triggers: [{name: go, type: data}]
    tasks:
      - {name: hold, type: exec, listen: trigger.good, opts: {cmd: "sleep 60"}}
  - id: quick
    name: Quick
    triggers: [{name: go, type: data}]
    tasks:
      - {name: blink, type: exec, listen: trigger.good, opts: {cmd: "true"}}
`;
}
