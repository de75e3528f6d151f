import {
  Kernel,
  TargetError,
  inject,
  injectable,
  type MsgInfo,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
} from '@cr/core';
import { SysvIpcObjectPlugin, createWithSavedId, recreateIpcObject, withinIntoNamespace, type IpcObjectHandle, type StandIn } from '@cr/sysvipc-base';
import { msgRecordSchema, type MsgRecord } from './record.js';

const CAP_SYS_RESOURCE = 24;

/**
 * SysV message queues. Messages are read with MSG_COPY, so a checkpoint leaves the queue exactly
 * as it was; their payloads follow one another in one blob, their types and sizes in the record.
 */
@injectable()
export class SysvMsgPlugin extends SysvIpcObjectPlugin<MsgRecord, 'msg'> implements ResourcePlugin<MsgRecord, IpcObjectHandle<MsgInfo>, number> {
  readonly type = 'sysvipc-msg';
  readonly description = 'SysV message queues: every message in order, key, id, owners, mode, msg_qbytes';
  readonly recordSchema = msgRecordSchema;
  /** The program holds the queue id itself: only a queue with that id can stand in for it. */
  protected readonly standIn: StandIn = { shape: [], otherId: false };

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel, 'msg');
  }

  protected blobsOf(record: MsgRecord): Record<string, number> {
    return { messages: record.messages.reduce((sum, m) => sum + m.size, 0) };
  }

  async save(node: ResourceNode<IpcObjectHandle<MsgInfo>>, ctx: SaveContext): Promise<MsgRecord> {
    const { ns, info } = node.handle;
    const ipc = this.kernel.sysvipc;
    const { qbytes, messages } = this.kernel.namespaces.within(ns, () => ({
      qbytes: ipc.msgQbytes(info.id),
      messages: ipc.msgCopyAll(info.id, info.qnum, info.cbytes),
    }));
    await ctx.writeBlob('messages', Buffer.concat(messages.map((m) => m.data)));
    return {
      ...this.identityOf(info),
      qbytes,
      messages: messages.map((m) => ({ type: m.type, size: m.data.length })),
    };
  }

  /**
   * Besides a free id and key: every message must fit the target namespace's kernel.msgmax, and
   * a queue larger than its kernel.msgmnb can only be recreated with CAP_SYS_RESOURCE. Only an
   * existing namespace (`--into-ipc-ns`) can be checked here; a new one gets the saved limits from its ipc-ns record first.
   */
  override preflight(record: MsgRecord, ctx: RestoreContext): void {
    super.preflight(record, ctx);
    const found = withinIntoNamespace(this.kernel, ctx, () => ['msgmnb', 'msgmax'].map((n) => Number(this.kernel.sysctl.read(`kernel.${n}`))));
    if (!found) return;
    const { into, value: [msgmnb, msgmax] } = found;
    const largest = Math.max(0, ...record.messages.map((m) => m.size));
    if (largest > msgmax!) {
      throw new TargetError(
        `cannot restore ${ctx.key} (msg id ${record.id}) into ${into}: it holds a ${largest}-byte message, above that namespace's ` +
          `kernel.msgmax ${msgmax}; raise it first: nsenter --ipc=${into} sysctl kernel.msgmax=${largest}`,
      );
    }
    if (this.kernel.procfs.hasCapability(CAP_SYS_RESOURCE)) return;
    if (record.qbytes > msgmnb!) {
      throw new TargetError(
        `cannot restore ${ctx.key} (msg id ${record.id}) into ${into}: its msg_qbytes ${record.qbytes} is above that namespace's ` +
          `kernel.msgmnb ${msgmnb}, and cr lacks CAP_SYS_RESOURCE to exceed it; raise it first: nsenter --ipc=${into} sysctl kernel.msgmnb=${record.qbytes}`,
      );
    }
  }

  async restore(record: MsgRecord, ctx: RestoreContext): Promise<number> {
    const payload = Buffer.alloc(ctx.blobSize('messages'));
    await ctx.readBlobInto('messages', payload);
    const ipc = this.kernel.sysvipc;
    return recreateIpcObject(this.kernel, ctx, 'msg', record.id, (ns) =>
      this.kernel.namespaces.within(ns, () => {
        createWithSavedId(this.kernel, 'msg', record.id, () => ipc.asCreator(record, () => ipc.msgCreate(record.key, 0o600)));
        // A queue may hold more than its msg_qbytes allows (IPC_SET lowers it without looking at
        // what is queued; the kernel bounds both bytes and messages by it): it takes every
        // message first, and gets its own limit after.
        const needed = Math.max(payload.length, record.messages.length);
        ipc.setMsgQbytes(record.id, Math.max(record.qbytes, needed));
        let offset = 0;
        for (const m of record.messages) {
          ipc.msgSend(record.id, { type: m.type, data: payload.subarray(offset, offset + m.size) });
          offset += m.size;
        }
        if (needed > record.qbytes) ipc.setMsgQbytes(record.id, record.qbytes);
        ipc.setOwnership('msg', record.id, record);
      }),
    );
  }
}

export { msgRecordSchema, type MsgRecord } from './record.js';

export default SysvMsgPlugin;
