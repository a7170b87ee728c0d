function applyFilters(){
  const sel=[...document.querySelectorAll('.filters select')];
  let shown=0;
  document.querySelectorAll('tr.clip').forEach(tr=>{
    const ok=sel.every(s=>!s.value||tr.dataset[s.name]===s.value);
    tr.hidden=!ok; if(ok) shown++;});
  document.getElementById('shown').textContent=shown+' shown';
}
document.querySelectorAll('.filters select').forEach(s=>s.addEventListener('change',applyFilters));
applyFilters();
