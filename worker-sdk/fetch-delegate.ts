/**
 * Gives a lazy stand-in (a Request or Response that makes undici's only when needed) every
 * member of undici's prototype it does not answer itself: each makes the undici object and
 * answers from it. Members a later Node adds are covered without a change here.
 */
export function delegateMembers<T extends object>(
  standIn: { prototype: T },
  undici: { prototype: object },
  made: (self: T) => object,
): void {
  const own = new Set(Object.getOwnPropertyNames(standIn.prototype));
  for (const name of Object.getOwnPropertyNames(undici.prototype)) {
    if (own.has(name)) continue;
    const member = Object.getOwnPropertyDescriptor(undici.prototype, name)!;
    Object.defineProperty(
      standIn.prototype,
      name,
      typeof member.value === 'function'
        ? {
            value(this: T, ...args: unknown[]) {
              return (made(this) as Record<string, (...a: unknown[]) => unknown>)[name]!(...args);
            },
            writable: true,
            configurable: true,
          }
        : {
            get(this: T) {
              return (made(this) as Record<string, unknown>)[name];
            },
            configurable: true,
          },
    );
  }
}

/**
 * `x instanceof standIn` for any of undici's objects too; a subclass of the stand-in keeps the
 * usual test.
 */
export function widenInstanceOf(standIn: object, undici: abstract new (...args: never[]) => object): void {
  Object.defineProperty(standIn, Symbol.hasInstance, {
    value(this: unknown, value: unknown): boolean {
      return this === standIn
        ? value instanceof undici
        : Function.prototype[Symbol.hasInstance].call(this, value);
    },
    configurable: true,
  });
}
