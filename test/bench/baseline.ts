/**
 * The baselines: plain Node scripts that do only what the physics of a run requires, run
 * as their own process (like a floe host is), on the same machine in the same bench run.
 *
 *   node baseline.js spawn COUNT CONCURRENCY
 *       spawns COUNT `true` processes, CONCURRENCY chains at a time, each the way floe's
 *       agent does (own process group, stdout/stderr piped and read to the end); prints
 *       `{"procs":N,"ms":T,"cpu":{"self":MS,"children":MS}}`.
 *   node baseline.js serve
 *       a bare node:http server: `POST /run` answers 201 at once and runs a chain of three
 *       `date +%s%N` processes; `GET /run/ID` returns what they printed. Prints its port.
 *       The floor for trigger → first task and task → next task: HTTP plus spawn.
 */
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { readdir, readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

export interface CpuTimes {
  /** user + system CPU of the process itself, ms */
  readonly self: number;
  /** …of its children that it has reaped (its task processes), ms */
  readonly children: number;
}

/** CPU times from /proc/<pid>/stat (clock ticks of 10 ms on Linux). */
export async function cpuTimes(pid: number | "self"): Promise<CpuTimes> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const tick = 10; // USER_HZ is 100 on every Linux we run on
  const at = (i: number): number => (f[i - 3] ?? Number.NaN) * tick;
  return { self: at(14) + at(15), children: at(16) + at(17) };
}

/**
 * CPU times of a floe host together with its spawn helper (agent/spawner.ts): the helper's
 * own CPU counts as the host's, and the tasks it has reaped as the host's children.
 */
export async function hostCpuTimes(pid: number): Promise<CpuTimes> {
  const host = await cpuTimes(pid);
  let self = host.self;
  let children = host.children;
  for (const d of await helperPids(pid)) {
    try {
      const helper = await cpuTimes(d);
      self += helper.self;
      children += helper.children;
    } catch {
      // gone meanwhile
    }
  }
  return { self, children };
}

/** The spawn helper processes of a host (its children whose command line names it). */
export async function helperPids(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const d of await readdir("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = await readFile(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid && (await readFile(`/proc/${d}/cmdline`, "utf8")).includes("spawn-helper")) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Spawns `cmd` like agent/process.ts does and resolves with its stdout when it and its pipes are done. */
export function spawnLikeFloe(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let open = 2;
    let exited = false;
    const done = (): void => {
      if (open === 0 && exited) resolve(out);
    };
    child.once("error", reject);
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", () => undefined);
    for (const s of [child.stdout, child.stderr]) {
      s.once("close", () => {
        open--;
        done();
      });
    }
    child.once("exit", () => {
      exited = true;
      done();
    });
  });
}

/** COUNT processes over CONCURRENCY chains; returns the wall time in ms. */
export async function spawnMany(count: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const chain = async (): Promise<void> => {
    while (next < count) {
      next++;
      await spawnLikeFloe("true", []);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, chain));
  return performance.now() - t0;
}

interface BaselineRun {
  prints: string[];
  done: boolean;
}

function serve(): void {
  const runs = new Map<string, BaselineRun>();
  let ids = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.method === "POST" && req.url === "/run") {
      req.once("end", () => {
        const id = String(++ids);
        const run: BaselineRun = { prints: [], done: false };
        runs.set(id, run);
        res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ id }));
        void (async () => {
          for (let i = 0; i < 3; i++) run.prints.push((await spawnLikeFloe("date", ["+%s%N"])).trim());
          run.done = true;
        })();
      });
      return;
    }
    const m = /^\/run\/(\d+)$/.exec(req.url ?? "");
    const run = m?.[1] !== undefined ? runs.get(m[1]) : undefined;
    if (req.method === "GET" && run !== undefined) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(run));
      return;
    }
    res.writeHead(404).end();
  });
  server.listen(0, "127.0.0.1", () => {
    const addr = server.address();
    process.stdout.write(`port ${typeof addr === "object" && addr !== null ? addr.port : 0}\n`);
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const [mode, a, b] = argv;
  if (mode === "spawn") {
    const count = Number(a);
    const concurrency = Number(b);
    const before = await cpuTimes("self");
    const ms = await spawnMany(count, concurrency);
    const after = await cpuTimes("self");
    const cpu = { self: after.self - before.self, children: after.children - before.children };
    process.stdout.write(JSON.stringify({ procs: count, ms, cpu }) + "\n");
  } else if (mode === "serve") {
    serve();
  } else {
    process.stderr.write("usage: baseline.js spawn COUNT CONCURRENCY | serve\n");
    process.exitCode = 2;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main(process.argv.slice(2));
}
