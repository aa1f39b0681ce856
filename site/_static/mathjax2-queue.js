// The ipywidgets HTML manager typesets widget labels through MathJax 2's API, MathJax.Hub.Queue;
// the site loads MathJax 3 (deferred, before this file). Hand that call to MathJax 3.
if (window.MathJax && window.MathJax.startup && !window.MathJax.Hub) {
    window.MathJax.Hub = {
        Queue: (job) => window.MathJax.startup.promise.then(() => window.MathJax.typesetPromise([job[2]])),
    };
}
