import { readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';

/**
 * What `cr --version` prints, the line oclif would print (its user agent: package/version
 * platform-arch node-version), made without loading oclif: cr --version is what scripts call to
 * see whether cr is there, and oclif alone takes longer to load than the rest of the answer.
 */
export function versionLine(packageJson: string): string {
  const { name, version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { name: string; version: string };
  return `${name}/${version} ${platform()}-${arch()} node-${process.version}`;
}
