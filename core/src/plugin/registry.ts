import { typeNameSchema, type PolicyRule } from '@cr/schemas';
import { ConfigError, CrError, ExitCode, PluginError } from '../errors.js';
import { orderTypes } from '../graph/type-order.js';
import { NAMESPACE_FLAGS } from '../kernel/namespaces.js';
import { describeSelector } from '../policy/policy.js';
import { describeZodError } from '../zod-issues.js';
import { typedMatch, type SelectableAttributes } from '../policy/selector-types.js';
import { MIN_PLUGIN_API_VERSION, PLUGIN_API_VERSION, type AttributeType, type ResourcePlugin } from './contract.js';
import { ONE_SHOT } from '../one-shot-parse.js';

export interface RegisteredPlugin {
  plugin: ResourcePlugin;
  /** The package (or path) the plugin was loaded from. */
  source: string;
}

/** The group of every type whose objects are namespaces: `--exclude namespaces`, `--include namespaces:kind=uts`. */
export const NAMESPACES_GROUP = 'namespaces';

/** What the engine adds to the attributes of every namespace object, so that `namespaces:kind=uts` selects across types. */
const NAMESPACE_KIND: AttributeType = { oneOf: Object.keys(NAMESPACE_FLAGS) };

/** The installed resource types, each owned by exactly one plugin. */
export class PluginRegistry {
  private readonly byType = new Map<string, RegisteredPlugin>();
  private readonly options = new Map<string, unknown>();
  private order: string[] | undefined;

  register(plugin: ResourcePlugin, source: string): void {
    assertPluginShape(plugin, source);
    const existing = this.byType.get(plugin.type);
    if (existing) {
      throw new PluginError(`type "${plugin.type}" is provided twice: by ${existing.source} and by ${source}; remove one from the config's plugins`);
    }
    this.byType.set(plugin.type, { plugin, source });
    this.order = undefined;
  }

  /**
   * Validates the config's `pluginOptions` (type → that plugin's options) with each plugin's
   * `optionsSchema`, and keeps what it parsed for the plugin's contexts. A type no plugin handles,
   * options for a plugin without a schema, or a value its schema refuses is a ConfigError naming
   * the key path; `sourceOf(type)` says where the value came from. A plugin with a schema that is
   * given nothing gets what its schema makes of `{}` (its defaults).
   */
  setPluginOptions(given: Readonly<Record<string, unknown>>, sourceOf: (type: string) => string): void {
    for (const type of Object.keys(given)) {
      const where = `pluginOptions.${type} (${sourceOf(type)})`;
      if (!this.has(type)) throw new ConfigError(`${where}: no installed plugin handles type "${type}"; installed types: ${[...this.byType.keys()].join(', ')}`);
      if (!this.get(type).plugin.optionsSchema) throw new ConfigError(`${where}: plugin ${this.get(type).source} takes no options; remove the key`);
    }
    for (const { plugin, source } of this.byType.values()) {
      if (!plugin.optionsSchema) continue;
      const value = Object.hasOwn(given, plugin.type) ? given[plugin.type] : {};
      const parsed = plugin.optionsSchema.safeParse(value, ONE_SHOT);
      if (!parsed.success) {
        const lines = describeZodError(parsed.error, value, ['pluginOptions', plugin.type]);
        throw new ConfigError(`invalid options for plugin ${source} (${Object.hasOwn(given, plugin.type) ? sourceOf(plugin.type) : 'none given'}):\n  ${lines.join('\n  ')}`);
      }
      this.options.set(plugin.type, parsed.data);
    }
  }

  /** The options of `type`'s plugin, as its `optionsSchema` parsed them; undefined for a plugin without one. */
  optionsOf(type: string): unknown {
    return this.options.get(type);
  }

  has(type: string): boolean {
    return this.byType.has(type);
  }

  get(type: string): RegisteredPlugin {
    const found = this.byType.get(type);
    if (!found) {
      throw new PluginError(`no installed plugin handles type "${type}"; installed types: ${[...this.byType.keys()].join(', ') || 'none'}`);
    }
    return found;
  }

  /** The groups `type` is in (`sysvipc`, `namespaces`), by which rules can select it with others. */
  groupsOf(type: string): string[] {
    const { plugin } = this.get(type);
    return [...(plugin.groups ?? []), ...(plugin.namespaceKind ? [NAMESPACES_GROUP] : [])];
  }

  /** Every group name some installed type is in. */
  groups(): string[] {
    return [...new Set(this.orderedTypes().flatMap((t) => this.groupsOf(t)))].sort();
  }

  /** Whether `name` is what a rule may select by: an installed type or a group of them. */
  selects(name: string): boolean {
    return this.has(name) || this.groups().includes(name);
  }

  /**
   * The attributes objects of `name` can be selected by: a type's, as its plugin declares them;
   * a group's, those every type in it has with the same type.
   */
  selectableBy(name: string): SelectableAttributes {
    if (this.has(name)) {
      const { plugin } = this.get(name);
      return { ...plugin.selectableBy, ...(plugin.namespaceKind ? { kind: NAMESPACE_KIND } : {}) };
    }
    const [first, ...rest] = this.orderedTypes()
      .filter((t) => this.groupsOf(t).includes(name))
      .map((t) => this.selectableBy(t));
    return Object.fromEntries(Object.entries(first ?? {}).filter(([attr, type]) => rest.every((s) => JSON.stringify(s[attr]) === JSON.stringify(type))));
  }

  /**
   * `rule` with its selector's values as the objects hold them (`key=4660` → "0x00001234"); a
   * usage error when it names a type or group that is not installed, an attribute its objects
   * cannot be selected by, or a value not of the attribute's type.
   */
  typedRule(rule: PolicyRule): PolicyRule {
    if (!this.selects(rule.type)) {
      throw new CrError(
        `unknown resource type "${rule.type}"; installed types: ${this.orderedTypes().join(', ')}; groups: ${this.groups().join(', ')} (see cr types)`,
        ExitCode.Usage,
      );
    }
    if (!rule.match) return rule;
    return { ...rule, match: typedMatch(rule.type, `${rule.type}:${describeSelector(rule.match)}`, rule.match, this.selectableBy(rule.type)) };
  }

  all(): RegisteredPlugin[] {
    return this.orderedTypes().map((t) => this.byType.get(t)!);
  }

  /**
   * The order of restore: namespace types, and the types below them (SysV objects in an IPC
   * namespace), come first, because a process is created inside its namespaces and attaches its
   * IPC objects; then the other types in dependency order.
   */
  restoreOrder(): string[] {
    const order = this.orderedTypes();
    const early = new Set<string>();
    for (const type of order) {
      const { plugin } = this.byType.get(type)!;
      if (plugin.namespaceKind || [...plugin.collectsFrom, ...(plugin.dependsOn ?? [])].some((t) => early.has(t))) early.add(type);
    }
    return [...order.filter((t) => early.has(t)), ...order.filter((t) => !early.has(t))];
  }

  /** Types in dependency order: what is collected and saved first comes first. */
  orderedTypes(): string[] {
    this.order ??= orderTypes(
      [...this.byType.values()].map(({ plugin, source }) => ({
        type: plugin.type,
        needs: [...plugin.collectsFrom, ...(plugin.dependsOn ?? [])],
        declaredBy: source,
      })),
    );
    return this.order;
  }
}

function assertPluginShape(plugin: ResourcePlugin, source: string): void {
  const fail = (what: string) => {
    throw new PluginError(`plugin from ${source} is not a valid cr plugin: ${what}; see docs/plugins.md`);
  };
  if (!Number.isInteger(plugin.apiVersion) || plugin.apiVersion < MIN_PLUGIN_API_VERSION || plugin.apiVersion > PLUGIN_API_VERSION) {
    fail(
      `it implements plugin API version ${String(plugin.apiVersion)}, this cr loads versions ${MIN_PLUGIN_API_VERSION} to ${PLUGIN_API_VERSION}` +
        (Number(plugin.apiVersion) > PLUGIN_API_VERSION ? '; upgrade cr' : '; upgrade the plugin'),
    );
  }
  if (!typeNameSchema.safeParse(plugin.type).success) fail(`type ${JSON.stringify(plugin.type)} is not a type name like "uts-ns"`);
  if (!Number.isInteger(plugin.version) || plugin.version < 1) fail(`version must be a positive integer, got ${String(plugin.version)}`);
  if (!Array.isArray(plugin.collectsFrom) || plugin.collectsFrom.length === 0) fail('collectsFrom must name at least one parent type');
  if (typeof plugin.recordSchema?.safeParse !== 'function') fail('recordSchema must be a zod schema');
  if (plugin.optionsSchema !== undefined && typeof plugin.optionsSchema?.safeParse !== 'function') fail('optionsSchema must be a zod schema');
  for (const group of plugin.groups ?? []) {
    if (!typeNameSchema.safeParse(group).success) fail(`group ${JSON.stringify(group)} is not a name like "sysvipc"`);
  }
  for (const [name, type] of Object.entries(plugin.selectableBy ?? {})) {
    if (!/^[a-z][a-zA-Z0-9]*$/.test(name)) fail(`selectableBy names ${JSON.stringify(name)}, not an attribute name like "fd" or "nsems"`);
    if (!isAttributeType(type)) fail(`selectableBy.${name} is ${JSON.stringify(type)}, not "uint", "key", "string", "lineage" or {oneOf: [words]}`);
  }
  for (const method of ['collect', 'save', 'restore'] as const) {
    if (typeof plugin[method] !== 'function') fail(`it has no ${method}() method`);
  }
}

function isAttributeType(type: unknown): type is AttributeType {
  if (type === 'uint' || type === 'key' || type === 'string' || type === 'lineage') return true;
  const oneOf = (type as { oneOf?: unknown } | undefined)?.oneOf;
  return Array.isArray(oneOf) && oneOf.length > 0 && oneOf.every((w) => typeof w === 'string' && w !== '');
}
