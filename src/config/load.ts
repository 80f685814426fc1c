// Reading what the configuration points at: the config file itself, the ROOT directory and the TLS files.
// parseConfigText is pure; the rest touch the file system and throw ConfigError naming the field or flag.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../errors.js';
import { parseJson } from './json.js';
import { mergeConfig, type EffectiveConfig } from './merge.js';
import { validateConfig, type ConfigLayer } from './validate.js';
import type { ServeInvocation } from './flags.js';

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

export interface LoadedServeConfig extends EffectiveConfig {
  readonly resources: ConfigResources;
}

/** The whole pipeline for `serve`: the file (if any), merged under the flags, then its files checked and read. */
export async function loadServeConfig(invocation: ServeInvocation): Promise<LoadedServeConfig> {
  const file = invocation.configFile === undefined ? undefined : await loadConfigFile(invocation.configFile);
  const effective = mergeConfig(file, invocation.flags);
  return { ...effective, resources: await loadResources(effective) };
}
