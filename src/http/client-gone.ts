/**
 * @module A client that went away before its request was answered: logged as nginx does, status
 * 499 ("client closed request") with the body bytes that really arrived, at info level. It is the
 * client's doing, not a failure of the registry, so it is no error and no 500.
 */
import type { IncomingMessage } from 'node:http'

/** nginx's status for a request whose client closed the connection first. */
export const CLIENT_CLOSED_REQUEST = 499

/** Counts the body bytes of a request as the HTTP parser hands them over. */
export interface BodyCounter {
  readonly received: number
}

/**
 * Counts what the parser pushes into `incoming` (every body chunk goes through `push`). A `data`
 * listener would switch the stream to flowing mode before the route pipes it somewhere, and a
 * Transform in between costs every upload a copy step; this costs one call per chunk.
 */
export function countBody(incoming: IncomingMessage): BodyCounter {
  const counter = { received: 0 }
  const push = incoming.push
  incoming.push = function countedPush(this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding) {
    if (chunk !== null && chunk !== undefined) counter.received += (chunk as Buffer).length
    return push.call(this, chunk, encoding)
  }
  return counter
}

/** Whether the connection closed before the request's body had all arrived: the client left mid-upload. */
export function requestBrokeOff(incoming: IncomingMessage | undefined): boolean {
  if (!incoming || incoming.complete) return false
  return incoming.destroyed || (incoming.socket?.destroyed ?? false)
}

/**
 * At the response's close: whether the client left first, before its request body had all
 * arrived or before any of the response went out. A download cut short after its headers keeps
 * its status (the bytes sent say how far it got), as nginx logs it.
 */
export function clientGone(incoming: IncomingMessage | undefined, outgoing: { writableFinished: boolean; headersSent: boolean } | undefined): boolean {
  if (!incoming || !outgoing || outgoing.writableFinished) return false
  return requestBrokeOff(incoming) || !outgoing.headersSent
}
