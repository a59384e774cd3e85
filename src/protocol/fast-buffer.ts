// Node's Buffer has these one-encoding fast paths at run time; @types/node does not declare them.
// (Not exported from the package: the codec's own business.)
export interface FastBuffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  latin1Write(s: string, at: number): number;
  utf8Write(s: string, at: number): number;
}
