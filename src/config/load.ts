// Reading what the configuration points at: the config file itself, the ROOT directory and the TLS files.
// parseConfigText is pure; the rest touch the file system and throw ConfigError naming the field or flag.
import { constants as fsConstants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../errors.js';
import { parseJson } from './json.js';
import { mergeConfig, type EffectiveConfig } from './merge.js';
import { validateConfig, type ConfigLayer } from './validate.js';
import type { ServeInvocation } from './flags.js';
import type { ExecRouteConfig, SwitchyardConfig } from './schema.js';
import { DEFAULT_CHILD_PATH } from '../bridges/cgi-env.js';

/** Parses and checks a config file's text; relative paths in it resolve against `baseDir` (the file's directory). */
export function parseConfigText(text: string, baseDir: string): ConfigLayer {
  return validateConfig(parseJson(text), baseDir);
}

function reasonOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'it is a directory';
    default: return code ?? (error as Error).message;
  }
}

async function readFileOrFail(file: string, field: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file);
  } catch (error) {
    throw new ConfigError(field, `cannot read ${JSON.stringify(file)}: ${reasonOf(error)}`, { cause: error });
  }
}

/** Reads and checks a config file (an absolute path). */
export async function loadConfigFile(file: string): Promise<ConfigLayer> {
  const text = (await readFileOrFail(file, '--config')).toString('utf8');
  return parseConfigText(text, path.dirname(file));
}

/** What the server needs that the configuration only names: the TLS certificate and key contents. */
export interface ConfigResources {
  tls?: { cert: Buffer; key: Buffer };
}

/**
 * Checks that ROOT is a directory and that the TLS files are readable PEM that belong together, and reads them.
 * Errors name the flag or the config path that gave the value.
 */
export async function loadResources({ config, fieldFor }: EffectiveConfig): Promise<ConfigResources> {
  await checkBridgeFiles(config, fieldFor);
  if (config.root !== undefined) {
    const info = await fsp.stat(config.root).catch(() => undefined);
    if (info === undefined) throw new ConfigError(fieldFor('root'), `${JSON.stringify(config.root)} does not exist`);
    if (!info.isDirectory()) throw new ConfigError(fieldFor('root'), `${JSON.stringify(config.root)} is not a directory`);
  }
  if (config.tls === undefined) return {};
  const certField = fieldFor('tls.certFile');
  const keyField = fieldFor('tls.keyFile');
  const cert = await readFileOrFail(config.tls.certFile, certField);
  const key = await readFileOrFail(config.tls.keyFile, keyField);
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError(certField, `${JSON.stringify(config.tls.certFile)} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
  }
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(key.toString('latin1'))) {
    throw new ConfigError(keyField, `${JSON.stringify(config.tls.keyFile)} holds no PEM private key ("-----BEGIN PRIVATE KEY-----")`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new ConfigError(keyField, `${JSON.stringify(config.tls.keyFile)} cannot be used with ${JSON.stringify(config.tls.certFile)}: ${(error as Error).message}`, { cause: error });
  }
  return { tls: { cert, key } };
}

/** An existing directory we may read and enter, or the reason it is not. */
async function directoryProblem(dir: string): Promise<string | undefined> {
  const info = await fsp.stat(dir).catch((error: unknown) => error as NodeJS.ErrnoException);
  if (info instanceof Error) return `cannot read ${JSON.stringify(dir)}: ${reasonOf(info)}`;
  if (!info.isDirectory()) return `${JSON.stringify(dir)} is not a directory`;
  try {
    await fsp.access(dir, fsConstants.R_OK | fsConstants.X_OK);
  } catch (error) {
    return `cannot read ${JSON.stringify(dir)}: ${reasonOf(error)}`;
  }
  return undefined;
}

/** The PATH an exec route's programs get (and the one their program is looked up on): env, then passEnv, then the default. */
export function programSearchPath(route: Pick<ExecRouteConfig, 'env' | 'passEnv'>, environment: NodeJS.ProcessEnv = process.env): string {
  return route.env?.['PATH'] ?? (route.passEnv.includes('PATH') ? environment['PATH'] : undefined) ?? DEFAULT_CHILD_PATH;
}

/** The executable file `program` names (a path, or a bare name looked up on `searchPath`), or undefined. */
export async function findProgram(program: string, searchPath: string, cwd: string = process.cwd()): Promise<string | undefined> {
  const candidates = program.includes('/')
    ? [path.resolve(cwd, program)]
    : searchPath.split(':').filter((dir) => dir !== '').map((dir) => path.join(path.resolve(cwd, dir), program));
  for (const candidate of candidates) {
    try {
      await fsp.access(candidate, fsConstants.X_OK);
      if ((await fsp.stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * What the bridge routes name must be there when the server starts: an exec route's program (found on the PATH
 * its programs get) and cwd, a cgi route's directory, a tcp route's token file.
 */
async function checkBridgeFiles(config: SwitchyardConfig, fieldFor: (configPath: string) => string): Promise<void> {
  for (const [index, route] of config.routes.entries()) {
    const at = (key: string): string => fieldFor(`routes[${index}].${key}`);
    if (route.kind === 'exec') {
      if (route.cwd !== undefined) {
        const problem = await directoryProblem(route.cwd);
        if (problem !== undefined) throw new ConfigError(at('cwd'), problem);
      }
      const program = route.command[0]!;
      const searchPath = programSearchPath(route);
      if (await findProgram(program, searchPath, route.cwd) === undefined) {
        throw new ConfigError(at('command'), program.includes('/')
          ? `cannot run ${JSON.stringify(program)}: no such executable file`
          : `cannot find program ${JSON.stringify(program)} on the PATH its programs get (${searchPath}); give its full path, or pass PATH through with passEnv`);
      }
    } else if (route.kind === 'cgi') {
      const problem = await directoryProblem(route.directory);
      if (problem !== undefined) throw new ConfigError(at('directory'), problem);
    } else if (route.kind === 'tcp' && route.tokenFile !== undefined) {
      const info = await fsp.stat(route.tokenFile).catch((error: unknown) => error as NodeJS.ErrnoException);
      if (info instanceof Error) throw new ConfigError(at('tokenFile'), `cannot read ${JSON.stringify(route.tokenFile)}: ${reasonOf(info)}`);
    }
  }
}

export interface LoadedServeConfig extends EffectiveConfig {
  readonly resources: ConfigResources;
}

/** The whole pipeline for `serve`: the file (if any), merged under the flags, then its files checked and read. */
export async function loadServeConfig(invocation: ServeInvocation): Promise<LoadedServeConfig> {
  const file = invocation.configFile === undefined ? undefined : await loadConfigFile(invocation.configFile);
  const effective = mergeConfig(file, invocation.flags);
  return { ...effective, resources: await loadResources(effective) };
}
