// Merges the layers into the effective configuration: defaults < config file < flags. Pure. Also prints it
// (--print-config), in a shape that is itself a valid config file.
import { ConfigError } from '../errors.js';
import { CONFIG_SCHEMA, defaultConfig, routeFields, routesSchema, type ObjectSchema, type RouteConfig, type SwitchyardConfig } from './schema.js';
import { describeValue, type ConfigLayer, type RouteLayer } from './validate.js';
import type { FlagLayer } from './flags.js';

export interface EffectiveConfig {
  readonly config: SwitchyardConfig;
  /**
   * The name to blame for a config path in messages: the flag or argument that set it ('--tls-cert', 'ROOT'),
   * else the path itself ('tls.certFile', 'routes[2].path'), which is in the config file.
   */
  fieldFor(configPath: string): string;
}

const NO_FLAGS: FlagLayer = { layer: {}, routes: [], routeDefaults: {}, sources: {} };

/** Applies one layer's settings over `into` (which already holds the defaults and any earlier layer). */
function applyLayer(into: Record<string, unknown>, layer: ConfigLayer): void {
  for (const [key, node] of Object.entries(CONFIG_SCHEMA.fields)) {
    const value = (layer as Record<string, unknown>)[key];
    if (value === undefined || key === 'routes') continue;
    if (node.node === 'object' && node.presence === 'filled') {
      into[key] = { ...(into[key] as Record<string, unknown>), ...(value as Record<string, unknown>) };
    } else {
      // A leaf, or an object given whole (tls): the later layer replaces it.
      into[key] = Array.isArray(value) ? [...value] : typeof value === 'object' ? { ...value } : value;
    }
  }
}

/** The same object with its keys (and its nested objects' keys) in schema order, for stable printing. */
function inSchemaOrder(schema: ObjectSchema, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(schema.fields)) {
    const child = value[key];
    if (child === undefined) continue;
    out[key] = node.node === 'object' ? inSchemaOrder(node, child as Record<string, unknown>) : child;
  }
  return out;
}

/** A route with the route-level defaults filled in, its keys in schema order. */
function completeRoute(route: RouteLayer, defaults: FlagLayer['routeDefaults']): RouteConfig {
  const kindDefaults = Object.entries(routesSchema().kinds[route.kind].fields)
    .filter(([, leaf]) => leaf.default !== undefined)
    .map(([key, leaf]) => [key, Array.isArray(leaf.default) ? [...leaf.default] : leaf.default]);
  const filled: Record<string, unknown> = {
    ...Object.fromEntries(kindDefaults),
    ...route,
    protocols: [...(route.protocols ?? defaults.protocols ?? [])],
    maxConnections: route.maxConnections ?? 0,
  };
  const origins = route.allowedOrigins ?? defaults.allowedOrigins;
  if (origins !== undefined) filled['allowedOrigins'] = [...origins];
  const ordered = Object.keys(routeFields(route.kind)).filter((key) => filled[key] !== undefined).map((key) => [key, filled[key]]);
  return Object.fromEntries(ordered) as unknown as RouteConfig;
}

/**
 * defaults < file < flags. Flags for the WebSocket policy set the server-wide `websocket` values; a route in
 * the file that sets a key of its own keeps it. --protocol / --allowed-origin fill routes that list none.
 * Routes from --echo / --broadcast come after the file's; a path both define is an error.
 */
export function mergeConfig(file: ConfigLayer | undefined, flags: FlagLayer = NO_FLAGS): EffectiveConfig {
  const merged = defaultConfig() as unknown as Record<string, unknown>;
  if (file !== undefined) applyLayer(merged, file);
  applyLayer(merged, flags.layer);

  const fileRoutes = file?.routes ?? [];
  const routes: RouteConfig[] = fileRoutes.map((route) => completeRoute(route, flags.routeDefaults));
  const routeSources: Record<string, string> = {};
  for (const { route, flag } of flags.routes) {
    const clash = fileRoutes.findIndex((fileRoute) => fileRoute.path === route.path);
    if (clash !== -1) throw new ConfigError(flag, `route path ${describeValue(route.path)} is also routes[${clash}].path in the config file`);
    routeSources[`routes[${routes.length}]`] = flag;
    routes.push(completeRoute(route, flags.routeDefaults));
  }
  merged['routes'] = routes;
  const config = inSchemaOrder(CONFIG_SCHEMA, merged) as unknown as SwitchyardConfig;

  const fieldFor = (configPath: string): string => {
    const fromFlag = flags.sources[configPath];
    if (fromFlag !== undefined) return fromFlag;
    const route = /^(routes\[\d+\])/.exec(configPath)?.[1];
    return (route !== undefined ? routeSources[route] : undefined) ?? configPath;
  };

  // The metrics endpoint is plain HTTP; a WebSocket route at the same path would hide it (426).
  const metricsPath = config.metricsPath;
  if (metricsPath !== undefined) {
    const index = routes.findIndex((route) => route.path === metricsPath);
    if (index !== -1) throw new ConfigError(fieldFor('metricsPath'), `${describeValue(metricsPath)} is also the path of a WebSocket route (${fieldFor(`routes[${index}]`)})`);
  }
  return { config, fieldFor };
}

/** The effective configuration as --print-config prints it: JSON, two-space indent, one trailing newline. */
export function formatConfig(config: SwitchyardConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}
