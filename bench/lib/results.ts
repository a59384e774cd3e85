// The shape of one `npm run bench` run: what bench/run.ts writes to bench/results/<date>.json
// and bench/report.ts renders. Each part is what one bench script writes with --json.

export interface Machine {
  readonly cores: number;
  readonly cpu: string;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  /** 1-minute load average when the run started: a busy machine shows here. */
  readonly loadAverage: number;
  /** Peer name → version (Debian packages, npm packages). */
  readonly peers: Readonly<Record<string, string>>;
}

export interface CodecResults {
  readonly rows: readonly {
    readonly case: string;
    readonly unit: string;
    readonly ours: number;
    readonly theirs: number | null;
    readonly note: string;
  }[];
}

export interface WorkerRow {
  readonly kind: string;
  readonly keepConn: boolean;
  readonly path: string;
  /** The best round's req/s; runs has every round's. */
  readonly rps: number;
  readonly runs?: readonly number[];
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly rssPerWorkerMiB: number;
}

export interface WorkersResults {
  readonly wrk: string;
  readonly rows: readonly WorkerRow[];
}

export interface StarterResults {
  readonly wrk: string;
  readonly workers: number;
  readonly startupMs: Readonly<Record<string, number>>;
  readonly respawnMs: number;
  readonly respawnSamples: readonly number[];
  readonly reload: { readonly reloads: number; readonly sent: number; readonly lost: number };
  readonly steady: readonly {
    readonly worker: string;
    readonly starter: string;
    readonly runs: readonly number[];
  }[];
}

export interface ScalingResults {
  readonly wrk: string;
  readonly points: readonly {
    readonly kind: string;
    readonly connections: number;
    readonly rps: number;
    readonly p99: number;
    readonly errors: number;
  }[];
}

export interface ClientResults {
  readonly wrk: string;
  readonly inFlight: number;
  readonly front: readonly {
    readonly front: string;
    readonly rps: number;
    readonly p50: number;
    readonly p99: number;
    readonly errors: number;
  }[];
  readonly clients: readonly {
    readonly client: string;
    readonly target: string;
    readonly keepConn: boolean;
    readonly rps: number;
    readonly errors: number;
  }[];
}

/** bench/balance.ts's contract. */
export interface HotpathResults {
  readonly count: number;
  readonly rounds: number;
  /** CPU µs per request of each handler kind, in one process with no sockets: the median of the rounds. */
  readonly rows: readonly {
    readonly kind: string;
    readonly micros: number;
    readonly runs: readonly number[];
  }[];
}

export interface BalanceResults {
  readonly rows: readonly {
    readonly mode: 'shared' | 'reuseport' | 'reuseport-perl';
    readonly workers: number;
    readonly rps: number;
    readonly perWorker: readonly number[];
    readonly jain: number;
    readonly cswPerRequest: number;
  }[];
  readonly notes: readonly string[];
}

export interface CpuResults {
  readonly duration: number;
  readonly rows: readonly {
    readonly kind: string;
    readonly keepConn: boolean;
    readonly requests: number;
    readonly rps: number;
    /** CPU time of the worker process, and of nginx, per request. */
    readonly workerMicros: number;
    readonly nginxMicros: number;
  }[];
}

export interface Results {
  /** ISO time the run started. */
  readonly date: string;
  readonly quick: boolean;
  readonly machine: Machine;
  /** The exact commands, in order. */
  readonly commands: readonly string[];
  /** Benchmarks that failed (name: first line of the error); their parts are missing. */
  readonly failures: readonly string[];
  readonly codec?: CodecResults;
  readonly workers?: WorkersResults;
  /** The same workers benchmark run again on another Node line (its version), in the same run. */
  readonly workersOtherLine?: WorkersResults & { readonly node: string };
  readonly cpu?: CpuResults;
  readonly starter?: StarterResults;
  readonly scaling?: ScalingResults;
  readonly client?: ClientResults;
  readonly balance?: BalanceResults;
  readonly hotpath?: HotpathResults;
}
