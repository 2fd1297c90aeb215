import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../common/constants';
import { log } from '../common/log';
import type { TemporalTarget } from './connection';

/**
 * Registers opsflow's search attributes on a server we did not start. Clusters where the worker may not do
 * that (Temporal Cloud, locked-down namespaces) get a warning naming what the administrator must add.
 */
export async function ensureSearchAttributes(target: TemporalTarget): Promise<void> {
  const connection = await Connection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey });
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace: target.namespace });
    const missing = SEARCH_ATTRIBUTES.filter((k) => !(k.name in (existing.customAttributes ?? {})));
    if (!missing.length) return;
    await connection.operatorService.addSearchAttributes({
      namespace: target.namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
    log.info({ added: missing.map((k) => k.name) }, 'search attributes registered');
  } catch (err) {
    log.warn({ err: (err as Error).message, needed: SEARCH_ATTRIBUTES.map((k) => `${k.name} (Keyword)`) }, 'could not register search attributes; ask the cluster administrator to add them');
  } finally {
    await connection.close();
  }
}
