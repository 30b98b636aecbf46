import { readUsage } from '@yugong/metering';
import type { BillableUsage, RequestStatus } from '@yugong/schemas';
import type { Billed, EndpointRequest, Estimate, MeteredEndpoint } from '../endpoints/index.js';

/**
 * What to bill. Upstream's own usage when it sent one; otherwise what the endpoint bills
 * without it: for text that reached the client (an abort or a cut stream), the delivered text
 * counted with the model's tokenizer; for requests priced by what was asked (images, speech,
 * translation minutes) the request.
 */
export function billedUsage(endpoint: MeteredEndpoint, req: EndpointRequest, hold: Estimate, outcome: { status: RequestStatus; httpStatus: number; reported: unknown; delivered: string }): Billed {
  if (outcome.reported) {
    const r = readUsage(outcome.reported, req.model.startsWith('gpt-image'));
    const usage: BillableUsage = { ...hold.usage, tokens: r.tokens, images: 0, audioMs: 0, speechCharacters: 0 };
    if (r.audioSeconds !== null) usage.audioMs = r.audioSeconds * 1000;
    return { usage: endpoint.fromReport?.(usage, req, hold) ?? usage, source: 'upstream' };
  }
  const served = outcome.httpStatus < 400 && outcome.status !== 'upstream_error';
  return endpoint.unreported({
    req,
    hold,
    delivered: outcome.delivered,
    outcome: served ? 'served' : 'failed',
    partial: outcome.status === 'upstream_error' && outcome.delivered.length > 0,
  });
}
