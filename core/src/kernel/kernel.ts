import { FeatureProbe } from './features.js';
import { Libc } from './libc.js';
import { Namespaces } from './namespaces.js';
import { Procfs } from './procfs.js';
import { Ptrace } from './ptrace.js';
import { Sysctl } from './sysctl.js';
import { SysvIpc } from './sysvipc.js';

/**
 * The kernel layer as plugins see it: one injectable service (inject `Kernel`) whose parts wrap
 * libc calls and /proc with typed methods that throw KernelError or a CrError subclass.
 */
export class Kernel {
  readonly libc = new Libc();
  readonly namespaces = new Namespaces(this.libc);
  readonly sysctl = new Sysctl();
  readonly procfs = new Procfs();
  readonly sysvipc = new SysvIpc(this.libc, this.sysctl);
  readonly ptrace = new Ptrace(this.libc);
  readonly features = new FeatureProbe(this.libc, this.namespaces);

  /** hostname and domainname of the UTS namespace the calling thread is in. */
  utsNames(): { hostname: string; domainname: string } {
    const u = this.libc.uname();
    return { hostname: u.nodename, domainname: u.domainname };
  }

  setUtsNames(names: { hostname: string; domainname: string }): void {
    this.libc.sethostname(names.hostname);
    this.libc.setdomainname(names.domainname);
  }
}
