import { dirname } from 'node:path';
import { CrError, ExitCode } from '@cr/core';
import {
  DEFAULT_CONFIG,
  describeZodError,
  loadConfigFile,
  noProgress,
  silentLogger,
  type ConfigLayer,
  type DependencyContainer,
  type Logger,
  type PluginRegistry,
  type ProgressReporter,
  type ResolvedConfig,
} from '@cr/core/engine';
import { openSession } from '@cr/api';
import { configSchema, type CrConfig, type CrProfile } from '@cr/schemas';
import { Command } from '@oclif/core/command';
import * as Errors from '@oclif/core/errors';
import * as Flags from '@oclif/core/flags';
import type { Interfaces } from '@oclif/core';
import { errorJson, usageError } from './errors.js';
import { closeLogFile, createLogger } from './logging/create-logger.js';
import { inServiceJob, RunLocally } from './service/job-state.js';
import { shareBundledModules } from './shared-modules.js';
import { DEFAULT_PROGRESS_DELAY_MS, TerminalProgress } from './logging/terminal-progress.js';

/** oclif's FlagOutput and ArgOutput, which it does not export. */
type ParsedValues = { [name: string]: any };

/** A config file that is code (cr.config.js, .ts …): loaded with import(), which runs a module once per process. */
const CONFIG_MODULE = /\.[cm]?[jt]s$/;

/** Config values set by flags, keyed by the flag that set them (shown by `cr config`). */
export type CrConfigFlags = Record<string, CrConfig>;

/** Overrides how long work must last before its progress bar appears (tests use 0). */
export const PROGRESS_DELAY_ENV = 'CR_PROGRESS_DELAY_MS';

/**
 * What every cr command shares: `--config`, the layered config (defaults → file → flags), a
 * container with the plugins loaded, logging (`-v`, `--log-file`) and progress bars, warnings as
 * `cr: warning: …` lines, and every error, the parser's too, turned into one `cr:` line (or, with
 * `--json`, one JSON document) and an exit code.
 */
export abstract class CrCommand extends Command {
  static override baseFlags = {
    config: Flags.file({ helpValue: 'FILE', description: 'Config file to use instead of searching for .crrc and friends.', exists: true, helpGroup: 'GLOBAL' }),
    verbose: Flags.boolean({
      char: 'v',
      description: "Log on stderr: -v each phase with its timing, -vv also each object's steps and decisions, -vvv everything.",
      helpGroup: 'GLOBAL',
    }),
    'log-file': Flags.string({
      helpValue: 'FILE',
      description: 'Append every log line, at the most detailed level whatever -v says, to FILE as JSON lines (created mode 0600).',
      helpGroup: 'GLOBAL',
    }),
  };

  /** Logs nothing until the flags are parsed; then as -v and --log-file say. */
  protected logger: Logger = silentLogger;
  private progress: ProgressReporter = noProgress;
  protected container!: DependencyContainer;
  protected registry!: PluginRegistry;
  protected resolved!: ResolvedConfig;
  protected configFile: string | undefined;
  /** The warnings given so far, which a `--json` result or error carries as `warnings`. */
  protected readonly warnings: string[] = [];

  /**
   * Loads config and plugins: cr's defaults, the config file, the file's profile named by
   * `--profile`, then `flagLayer`, the values the command's own flags set. In the cr service, a
   * command whose config file is a module (CONFIG_MODULE), or names plugins from outside, is
   * handed back to its caller: import() runs a module once per process.
   */
  protected async setUp(configPath: string | undefined, flagLayer: CrConfigFlags = {}, profile?: string): Promise<void> {
    const file = await loadConfigFile({ cwd: process.cwd(), file: configPath });
    if (inServiceJob() && file.filepath && CONFIG_MODULE.test(file.filepath)) {
      throw new RunLocally(`its config file ${file.filepath} is a module, which the service would run once and never read again`);
    }
    this.configFile = file.filepath;
    const layers: ConfigLayer[] = [{ source: 'default', config: DEFAULT_CONFIG }];
    if (file.filepath) layers.push({ source: `file ${file.filepath}`, config: file.config });
    if (profile !== undefined) layers.push({ source: `profile ${profile} of ${file.filepath}`, config: profileOf(file.config, file.filepath, profile) });
    for (const [flag, config] of Object.entries(flagLayer)) layers.push({ source: `flag ${flag}`, config });
    if (file.filepath) this.logger.debug({ config: file.filepath }, `config file ${file.filepath}`);
    const searchFrom = [...(file.filepath ? [dirname(file.filepath)] : []), process.cwd()];
    if (layers.some((layer) => (layer.config.plugins ?? []).length > 0)) {
      if (inServiceJob()) throw new RunLocally('its config names plugins from outside cr, which the service would load once and never again');
      shareBundledModules();
    }
    const session = await openSession({ layers, searchFrom, logger: this.logger, progress: this.progress });
    this.container = session.container;
    this.registry = session.registry;
    this.resolved = session.resolved;
  }

  /**
   * A warning that does not stop the command: one `cr: warning:` line on stderr (written directly:
   * oclif's logToStderr is silent under --json), and in the `--json` result.
   */
  override warn(input: string | Error): string | Error {
    const text = typeof input === 'string' ? input : input.message;
    this.warnings.push(text);
    this.logger.warn(text);
    process.stderr.write(`cr: warning: ${text}\n`);
    return input;
  }

  protected override toSuccessJson(result: unknown): unknown {
    return { ...(result as object), warnings: this.warnings };
  }

  /**
   * Why this command line must run in the caller's own process rather than in the cr service
   * (docs/service.md), or undefined when the service may run it: it reads the caller's stdin,
   * streams to its stdout, or waits for processes it restores. Asked once the flags are parsed,
   * before anything is done.
   */
  static runsLocally(_flags: ParsedValues, _args: ParsedValues): string | undefined {
    return undefined;
  }

  /**
   * Any error the parser finds is a usage error (exit 2), in cr's words. In the cr service, a
   * command line that must run in its caller's process is handed back (runsLocally).
   */
  protected override async parse<F extends ParsedValues, B extends ParsedValues, A extends ParsedValues>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    let parsed: Interfaces.ParserOutput<F, B, A>;
    try {
      parsed = await super.parse(options, argv);
    } catch (err) {
      throw usageError(err as Error, this.id);
    }
    if (inServiceJob()) {
      const reason = (this.constructor as typeof CrCommand).runsLocally(parsed.flags, parsed.args);
      if (reason !== undefined) throw new RunLocally(reason);
    }
    await this.startLogging(parsed.raw.filter((token) => token.type === 'flag' && token.flag === 'verbose').length, parsed.flags['log-file']);
    return parsed;
  }

  /**
   * The logger and progress reporter of this command: -v given `verbosity` times, `--log-file`;
   * progress bars only on a terminal, and never with --json.
   */
  private async startLogging(verbosity: number, file: string | undefined): Promise<void> {
    const terminal = process.stderr.isTTY ? { colour: process.stderr.hasColors() } : undefined;
    const bars = terminal && !this.jsonEnabled() ? new TerminalProgress(process.stderr, progressDelay()) : undefined;
    this.progress = bars ?? noProgress;
    const stderr = (text: string) => (bars ? bars.write(text) : process.stderr.write(text));
    this.logger = await createLogger({ verbosity, stderr, ...(file === undefined ? {} : { file }), ...(terminal ? { terminal } : {}) });
    this.logger.trace({ argv: this.argv, version: this.config.version }, `cr ${this.id} ${this.argv.join(' ')}`);
  }

  /**
   * --json output as oclif writes it, without its colouring pass unless a JSON theme asks for
   * colours: that pass tokenises the text with a regular expression per token even when it adds
   * nothing, 23 ms for the 135 KB report of a 100-process checkpoint.
   */
  override logJson(json: unknown): void {
    if (this.config.theme?.json) super.logJson(json);
    else console.log(JSON.stringify(json, null, 2));
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    closeLogFile(this.logger);
    return super.finally(err);
  }

  protected override async catch(err: Error): Promise<unknown> {
    if (err instanceof Errors.ExitError || err instanceof RunLocally) throw err;
    const error = err instanceof CrError ? err : new CrError(err.message, ExitCode.Failure, { cause: err });
    this.logger.error({ err: error, exitCode: error.exitCode }, `cr ${this.id} failed (exit ${error.exitCode}): ${error.message}`);
    if (this.jsonEnabled()) this.logJson(errorJson(error, this.warnings));
    else this.logToStderr(`cr: ${error.message}`);
    this.exit(error.exitCode);
  }
}

/** How long work must last before its bar appears: CR_PROGRESS_DELAY_MS, or a second. */
function progressDelay(): number {
  const ms = Number(process.env[PROGRESS_DELAY_ENV]);
  return process.env[PROGRESS_DELAY_ENV] !== undefined && Number.isFinite(ms) && ms >= 0 ? ms : DEFAULT_PROGRESS_DELAY_MS;
}

/** The settings of profile `name` of the config file, or a usage error naming the profiles there are. */
function profileOf(config: CrConfig, filepath: string | undefined, name: string): CrProfile {
  if (!filepath) throw new CrError(`--profile ${name}: no config file was found (searched from ${process.cwd()} upwards), so there are no profiles; pass --config FILE`, ExitCode.Usage);
  const profiles = config.profiles ?? {};
  const found = profiles[name];
  if (!found) {
    const names = Object.keys(profiles);
    throw new CrError(`--profile ${name}: ${filepath} has no profile "${name}"; its profiles: ${names.length > 0 ? names.join(', ') : 'none (add them under "profiles")'}`, ExitCode.Usage);
  }
  return found;
}

/**
 * The config layers that `--only`, `--include`, `--exclude` and `--external` stand for. Each
 * takes a comma-separated list and may be repeated; the layers are validated like a config file.
 */
export function typeSelectionFlags(flags: { only?: string[]; include?: string[]; exclude?: string[]; external?: string[] }): CrConfigFlags {
  const layers: CrConfigFlags = {};
  for (const name of ['only', 'include', 'exclude', 'external'] as const) {
    const values = flags[name];
    if (values === undefined) continue;
    const list = values.flatMap((v) => v.split(',')).map((t) => t.trim()).filter(Boolean);
    if (list.length === 0) throw new CrError(`--${name} ${values.join(' ')}: name at least one type or selection, e.g. --${name} sysvipc`, ExitCode.Usage);
    const parsed = configSchema.safeParse({ checkpoint: { [name]: list } });
    if (!parsed.success) throw new CrError(`--${name}: ${describeZodError(parsed.error, { checkpoint: { [name]: list } }).join('; ')}`, ExitCode.Usage);
    layers[`--${name}`] = parsed.data;
  }
  return layers;
}

/** Flags of the commands that select what is saved. */
export const selectionFlags = {
  only: Flags.string({ multiple: true, helpValue: 'TYPE,...', description: 'Save only these resource types or groups (comma-separated), e.g. uts-ns,ipc-ns.' }),
  include: Flags.string({
    multiple: true,
    helpValue: 'SELECTOR,...',
    description: 'Save these types or objects even where another rule excludes them: TYPE or TYPE:ATTR=VALUE, e.g. sysvipc-shm:key=0x1234.',
  }),
  exclude: Flags.string({
    multiple: true,
    helpValue: 'SELECTOR,...',
    description: 'Leave these types or objects out: TYPE or TYPE:ATTR=VALUE, e.g. ipc-ns, sysvipc, sysvipc-msg:id=3, files:path=/var/log/*.',
  }),
  external: Flags.string({
    multiple: true,
    helpValue: 'SELECTOR,...',
    description: 'Leave these out as objects the program uses that must exist at restore (checked before restoring): TYPE or TYPE:ATTR=VALUE.',
  }),
};

/** `--profile NAME`, for the commands whose settings a config file's profiles can hold. */
export const profileFlag = {
  profile: Flags.string({ helpValue: 'NAME', description: 'Apply the settings of this profile of the config file (its "profiles" key) over the rest of the file.' }),
};

/** What `--tcp-established` does, for the commands that take it (checkpoint, and config to show it). */
export const TCP_ESTABLISHED_DESCRIPTION =
  "Save established TCP connections with TCP_REPAIR (sequence numbers, queues, options, windows) instead of refusing them; each is blocked with an nftables rule from the freeze until the process carries on, or, with --kill, until cr restore has made it again (config: pluginOptions.inet-sockets.tcpEstablished).";

/** The config layer `--tcp-established` stands for: the inet-sockets plugin's option. */
export function tcpEstablishedLayer(given: boolean | undefined): CrConfigFlags {
  return given ? { '--tcp-established': { pluginOptions: { 'inet-sockets': { tcpEstablished: true } } } } : {};
}
