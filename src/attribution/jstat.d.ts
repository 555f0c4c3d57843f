// Types for the parts of jstat used here (the package ships none).
declare module 'jstat' {
  const jStat: {
    corrcoeff(a: ArrayLike<number>, b: ArrayLike<number>): number;
    studentt: { cdf(t: number, df: number): number; inv(p: number, df: number): number };
    normal: { cdf(x: number, mean: number, sd: number): number; inv(p: number, mean: number, sd: number): number };
  };
  export default jStat;
}
